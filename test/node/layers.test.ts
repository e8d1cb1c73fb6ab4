// The layers of DESIGN.md, read from the source: what each folder of src may import, and no
// import cycle anywhere in src (type-only imports included: a cycle of types is a cycle of ideas).
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = resolve(import.meta.dirname, "../../src");

function sourceFiles(directory: string): string[] {
	return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
		const path = join(directory, entry.name);
		if (entry.isDirectory()) return sourceFiles(path);
		return entry.name.endsWith(".ts") ? [path] : [];
	});
}

/** Each file of src (relative to it) and the files of src it imports. */
const imports = new Map<string, string[]>(
	sourceFiles(SRC).map((file) => {
		const text = readFileSync(file, "utf8");
		const targets = [...text.matchAll(/(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/g)].map(
			(match) => relative(SRC, resolve(dirname(file), match[1] as string)),
		);
		return [relative(SRC, file), targets];
	}),
);

const layerOf = (file: string) => (file.includes("/") ? file.split("/")[0] : file);

/** Which layers each layer may import (besides itself). */
const ALLOWED: Record<string, string[]> = {
	core: [],
	providers: ["core"],
	durable: ["core", "config.ts", "log.ts"],
	gateway: ["providers", "durable", "usage", "config.ts", "log.ts"],
	usage: ["core", "providers"],
	mock: [],
	"config.ts": ["core", "config-errors.ts"],
	"config-errors.ts": [],
	"log.ts": [],
	"index.ts": ["gateway", "durable"],
	"dev.ts": ["gateway", "durable", "mock", "index.ts"],
};

describe("layers", () => {
	it("each folder of src imports only what DESIGN.md allows", () => {
		const breaches: string[] = [];
		for (const [file, targets] of imports) {
			const layer = layerOf(file) as string;
			const allowed = ALLOWED[layer];
			if (!allowed) continue;
			for (const target of targets) {
				const targetLayer = layerOf(target) as string;
				if (targetLayer !== layer && !allowed.includes(targetLayer)) {
					breaches.push(`${file} → ${target}`);
				}
			}
		}
		expect(breaches).toEqual([]);
	});

	it("the production entry does not import the mock provider", () => {
		const reached = new Set<string>();
		const visit = (file: string) => {
			if (reached.has(file)) return;
			reached.add(file);
			for (const target of imports.get(file) ?? []) visit(target);
		};
		visit("index.ts");
		expect([...reached].filter((file) => file.startsWith("mock/"))).toEqual([]);
	});

	it("has no import cycle", () => {
		const cycles: string[] = [];
		const state = new Map<string, "visiting" | "done">();
		const visit = (file: string, path: string[]) => {
			if (state.get(file) === "done") return;
			if (state.get(file) === "visiting") {
				cycles.push([...path.slice(path.indexOf(file)), file].join(" → "));
				return;
			}
			state.set(file, "visiting");
			for (const target of imports.get(file) ?? []) visit(target, [...path, file]);
			state.set(file, "done");
		};
		for (const file of imports.keys()) visit(file, []);
		expect(cycles).toEqual([]);
	});
});
