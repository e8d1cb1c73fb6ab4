// Plain-English messages for TOLLBOOTH_CONFIG's validation issues (zod's error map): what a field
// must be, what it got, and for an unknown key the nearest known one ("did you mean").
import type { core } from "zod/mini";

type RawIssue = core.$ZodRawIssue;

/** What a value is, in words: `the string "600"`, `a number`, `an object`. */
function described(value: unknown): string {
	if (value === null) return "null";
	if (Array.isArray(value)) return "a list";
	if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 60))}`;
	if (typeof value === "number") return `the number ${value}`;
	if (typeof value === "boolean") return `${value}`;
	if (value === undefined) return "nothing";
	return `${typeof value === "object" ? "an object" : typeof value}`;
}

const TYPE_NAMES: Record<string, string> = {
	number: "a number",
	int: "a whole number",
	string: "a string",
	object: "an object",
	record: "an object",
	array: "a list",
	boolean: "true or false",
};

/** What one branch of a union, or a single schema, expected: `a number`, `"auto"`. */
function expectedOf(issue: { code: string; expected?: unknown; values?: unknown[] }): string {
	if (issue.code === "invalid_type") {
		return TYPE_NAMES[String(issue.expected)] ?? `a ${String(issue.expected)}`;
	}
	if (issue.code === "invalid_value" && issue.values) {
		return issue.values.map((value) => JSON.stringify(value)).join(" or ");
	}
	return "";
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
	let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
	for (let i = 1; i <= a.length; i++) {
		const current = [i];
		for (let j = 1; j <= b.length; j++) {
			const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
			current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
		}
		previous = current;
	}
	return previous[b.length] ?? 0;
}

/** The known key nearest to `key` (case-insensitive, at most a third of its letters off). */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
	let best: { name: string; cost: number } | undefined;
	for (const name of known) {
		const cost = distance(key.toLowerCase(), name.toLowerCase());
		if (cost <= Math.max(1, Math.floor(name.length / 3)) && (!best || cost < best.cost)) {
			best = { name, cost };
		}
	}
	return best?.name;
}

function unknownKeys(keys: string[], known: readonly string[]): string {
	return keys
		.map((key) => {
			const near = nearestKey(key, known);
			return near ? `unknown key "${key}" (did you mean "${near}"?)` : `unknown key "${key}"`;
		})
		.join(", ");
}

/** The keys an object schema knows, from the schema that raised the issue. */
function knownKeys(issue: RawIssue): string[] {
	const def = (issue.inst as { _zod?: { def?: { shape?: object } } } | undefined)?._zod?.def;
	return def?.shape ? Object.keys(def.shape) : [];
}

/** zod error map for TOLLBOOTH_CONFIG; undefined leaves a message a schema set itself. */
export function configErrorMessage(issue: RawIssue): string | undefined {
	switch (issue.code) {
		case "invalid_type":
			return issue.input === undefined
				? `is required (${expectedOf(issue)})`
				: `must be ${expectedOf(issue)}, got ${described(issue.input)}`;
		case "invalid_union": {
			const options = issue.errors
				.map((branch) => (branch[0] ? expectedOf(branch[0]) : ""))
				.filter((option) => option !== "");
			if (options.length === 0) return undefined;
			return `must be ${options.join(", or ")}; got ${described(issue.input)}`;
		}
		case "invalid_value":
			return `must be ${expectedOf(issue)}; got ${described(issue.input)}`;
		case "unrecognized_keys":
			return unknownKeys(issue.keys, knownKeys(issue));
		case "too_small":
			if (issue.origin === "array" || issue.origin === "string") return "must not be empty";
			return issue.minimum === 0 && !issue.inclusive
				? `must be more than 0, got ${described(issue.input)}`
				: `must be at least ${String(issue.minimum)}, got ${described(issue.input)}`;
		case "too_big":
			return `must be at most ${String(issue.maximum)}, got ${described(issue.input)}`;
		case "invalid_format":
			return issue.format === "url"
				? `must be an http(s) URL, got ${described(issue.input)}`
				: undefined;
		default:
			return undefined;
	}
}
