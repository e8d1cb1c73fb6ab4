// Where a request's CPU goes in the bench Worker: a V8 CPU profile of workerd (through wrangler's
// inspector) while a closed loop sends one variant, printed as self and total time by function,
// heaviest first. node bench/experiments/profile-hot-path.ts [variant=tollbooth] [concurrency=1]
// [ms=8000]. The variant "in-memory" loops tollbooth inside the Worker against a provider answering
// from memory (/bench/gateway-loop), so no wait for I/O is charged to the frame that awaits it.
// BENCH_UNMINIFIED=1 keeps the functions' names.
import { readFile } from "node:fs/promises";
import { SMALL_CHAT_BODY } from "../lib/bench-gateway.ts";
import { startBenchStack, type Variant } from "../lib/bench-stack.ts";
import { HttpClient, runClosedLoop } from "../lib/http-client.ts";

interface ProfileNode {
	id: number;
	callFrame: { functionName: string; url: string; lineNumber: number };
	children?: number[];
}

interface Profile {
	nodes: ProfileNode[];
	samples: number[];
	timeDeltas: number[];
}

/** The inspector port wrangler was started with, from its command line. */
async function inspectorPortOf(pid: number): Promise<number> {
	const args = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
	return Number(args[args.indexOf("--inspector-port") + 1]);
}

async function connect(port: number) {
	const targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as {
		webSocketDebuggerUrl: string;
	}[];
	const url = targets[0]?.webSocketDebuggerUrl;
	if (!url) throw new Error("no inspector target");
	// wrangler's inspector proxy answers only a browser's devtools, which send an Origin.
	const socket = new WebSocket(url, { headers: { Origin: "http://localhost" } } as never);
	await new Promise((open) => socket.addEventListener("open", open, { once: true }));
	// The proxy reaches the runtime a moment after: what is sent before is lost.
	await new Promise((settled) => setTimeout(settled, 2_000));
	let nextId = 0;
	const pending = new Map<number, (result: unknown) => void>();
	socket.addEventListener("message", (event) => {
		if (process.env.DEBUG_INSPECTOR) console.log(String(event.data).slice(0, 120));
		const message = JSON.parse(String(event.data)) as {
			id?: number;
			result?: unknown;
			method?: string;
		};
		if (message.id !== undefined) pending.get(message.id)?.(message.result);
	});
	const send = (method: string, params: object = {}) =>
		new Promise<unknown>((done) => {
			const id = ++nextId;
			pending.set(id, done);
			socket.send(JSON.stringify({ id, method, params }));
		});
	return { send, close: () => socket.close() };
}

function frameName(node: ProfileNode | undefined): string {
	const frame = node?.callFrame;
	if (!frame) return "?";
	const file = frame.url.split("/").slice(-2).join("/");
	return `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
}

/** Time by function: its own (`self`), or with everything it called (`total`). */
function timesByFunction(profile: Profile, kind: "self" | "total"): [string, number][] {
	const byId = new Map(profile.nodes.map((node) => [node.id, node]));
	const parentOf = new Map<number, number>();
	for (const node of profile.nodes) {
		for (const child of node.children ?? []) parentOf.set(child, node.id);
	}
	const times = new Map<string, number>();
	profile.samples.forEach((id, index) => {
		const ms = (profile.timeDeltas[index] ?? 0) / 1000;
		const names = new Set<string>();
		for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
			names.add(frameName(byId.get(at)));
			if (kind === "self") break;
		}
		for (const name of names) times.set(name, (times.get(name) ?? 0) + ms);
	});
	return [...times].sort((a, b) => b[1] - a[1]);
}

const [variant = "tollbooth", concurrency = "1", ms = "8000"] = process.argv.slice(2);
/** Requests each /bench/gateway-loop call sends through tollbooth. */
const LOOP_REQUESTS = 200;
const stack = await startBenchStack();
try {
	const inspector = await connect(await inspectorPortOf(stack.gateway.pid));
	const client = new HttpClient(Number(concurrency));
	const inMemory = variant === "in-memory";
	const tollbooth = stack.target("tollbooth", SMALL_CHAT_BODY);
	const target = inMemory
		? {
				...tollbooth,
				name: variant,
				url: new URL(`/bench/gateway-loop?n=${LOOP_REQUESTS}`, stack.gateway.origin),
			}
		: stack.target(variant as Variant, SMALL_CHAT_BODY);
	const loop = (durationMs: number) =>
		runClosedLoop({
			client,
			// The in-memory loop swaps the Worker's global fetch: one loop at a time.
			connections: inMemory ? 1 : Number(concurrency),
			durationMs,
			next: () => target,
			record() {},
		});
	await loop(2_000);
	await inspector.send("Runtime.enable");
	await inspector.send("Profiler.enable");
	await inspector.send("Profiler.setSamplingInterval", { interval: 50 });
	await inspector.send("Profiler.start");
	const run = await loop(Number(ms));
	const { profile } = (await inspector.send("Profiler.stop")) as { profile: Profile };
	inspector.close();
	client.close();
	const requests = run.completed * (inMemory ? LOOP_REQUESTS : 1);
	const total = timesByFunction(profile, "self").reduce((sum, [, t]) => sum + t, 0);
	console.log(`${variant} c=${concurrency}: ${requests} requests; profiled ${total.toFixed(0)} ms`);
	for (const kind of ["self", "total"] as const) {
		console.log(`${kind} time, µs per request:`);
		for (const [name, t] of timesByFunction(profile, kind).slice(0, 45)) {
			console.log(`${((1000 * t) / requests).toFixed(1).padStart(8)}  ${name}`);
		}
	}
} finally {
	await stack.stop();
}
