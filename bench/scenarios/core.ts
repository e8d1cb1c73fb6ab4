// Decisions per second of the pure scheduler (src/core/scheduler.ts) in Node, with 0, 1k and 100k
// waiters, and its memory per waiter. Measured in a child `node --expose-gc` (a clean heap); when a
// target is missed, the missed case runs again under --cpu-prof and the top frames are printed.
import { spawn } from "node:child_process";
import { readdir, readFile, rm } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import type { Priority } from "../../src/core/priority.ts";
import { type Ask, Scheduler } from "../../src/core/scheduler.ts";
import { printTable, type Row, saveReport } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";

const WAITER_COUNTS = [0, 1_000, 100_000] as const;
const REPETITIONS = 5;
const DECISIONS_PER_REPETITION = 200_000;
/** Concurrency slots: all taken while there are waiters, so a release is what admits the next. */
const MAX_CONCURRENT = 64;
const TENANTS = 8;
const PRIORITY_CYCLE: readonly Priority[] = ["normal", "high", "normal", "low"];
const FAR_MS = 1e12;
const TARGETS: Record<number, number> = { 0: 1_000_000, 100000: 200_000 };
const RESULTS_DIRECTORY = resolve(import.meta.dirname, "../results");

interface CaseResult {
	waiters: number;
	/** Median of the repetitions, and each of them. */
	decisionsPerSecond: number;
	repetitions: number[];
	/** Heap retained per waiter after GC (the waiter's Ask included), in bytes; absent for 0. */
	bytesPerWaiter?: number;
}

function scheduler(): Scheduler {
	return new Scheduler({
		limits: {
			requestsPerMinute: 1e12,
			tokensPerMinute: 1e15,
			burstRequests: 1e12,
			burstTokens: 1e15,
			maxConcurrent: MAX_CONCURRENT,
			models: {},
		},
		leaseTtlMs: FAR_MS,
		maxQueueLength: 1e9,
		maxQueuePerTenant: 1e9,
		maxWaitMsByPriority: { critical: FAR_MS, high: FAR_MS, normal: FAR_MS, low: FAR_MS },
		agingBoundMs: 60_000,
		tenants: {},
		headroom: { floor: 0, horizonMs: 1_000 },
	});
}

function ask(index: number, nowMs: number): Ask {
	return {
		ticketId: `t${index}`,
		tenant: `tenant-${index % TENANTS}`,
		model: "gpt-4o-mini",
		priority: PRIORITY_CYCLE[index % PRIORITY_CYCLE.length] as Priority,
		tokens: 100,
		deadlineMs: nowMs + FAR_MS,
	};
}

/**
 * With no waiters a decision is a submit that is admitted, plus (so that the state stays the same)
 * the release of that lease and a tick: all three are timed. With waiters, the slots are full and
 * each round is two decisions: a release + the tick that admits the queue's next waiter, and a
 * submit that is queued, so the queue keeps its length.
 */
function measureCase(waiters: number, gc: () => void): CaseResult {
	let nowMs = 1_000_000;
	let next = 0;
	const pool = scheduler();
	const leased: string[] = [];
	gc();
	const heapBeforeBytes = process.memoryUsage().heapUsed;
	if (waiters > 0) {
		for (let slot = 0; slot < MAX_CONCURRENT; slot++) {
			const decision = pool.submit(ask(next, nowMs), nowMs);
			if (decision.kind === "admitted") leased.push(decision.lease.ticketId);
			next += 1;
		}
		for (let waiter = 0; waiter < waiters; waiter++) {
			const decision = pool.submit(ask(next++, nowMs), nowMs);
			if (decision.kind !== "queued")
				throw new Error(`setup: waiter ${waiter} was ${decision.kind}`);
		}
	}
	gc();
	const bytesPerWaiter =
		waiters > 0 ? (process.memoryUsage().heapUsed - heapBeforeBytes) / waiters : undefined;

	const repetitions: number[] = [];
	for (let repetition = 0; repetition < REPETITIONS; repetition++) {
		const startedNs = process.hrtime.bigint();
		if (waiters === 0) {
			for (let decision = 0; decision < DECISIONS_PER_REPETITION; decision++) {
				nowMs += 0.001;
				const made = pool.submit(ask(next++, nowMs), nowMs);
				if (made.kind !== "admitted") throw new Error(`empty queue: ${made.kind}`);
				pool.release(made.lease.ticketId, 100, nowMs);
				pool.tick(nowMs);
			}
		} else {
			for (let decision = 0; decision < DECISIONS_PER_REPETITION; decision += 2) {
				nowMs += 0.001;
				const lease = leased.shift() as string;
				pool.release(lease, 100, nowMs);
				const outcomes = pool.tick(nowMs);
				const admitted = outcomes[0]?.result;
				if (outcomes.length !== 1 || admitted?.kind !== "admitted") {
					throw new Error(`release + tick admitted ${outcomes.length} waiters`);
				}
				leased.push(admitted.lease.ticketId);
				const queued = pool.submit(ask(next++, nowMs), nowMs);
				if (queued.kind !== "queued") throw new Error(`full slots: ${queued.kind}`);
			}
		}
		const seconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
		repetitions.push(DECISIONS_PER_REPETITION / seconds);
	}
	const sorted = [...repetitions].sort((a, b) => a - b);
	return {
		waiters,
		decisionsPerSecond: sorted[Math.floor(sorted.length / 2)] as number,
		repetitions,
		bytesPerWaiter,
	};
}

/** Child entry: measures the cases named on the command line and prints them as JSON. */
function measureInChild(cases: number[]): void {
	const gc = (globalThis as { gc?: () => void }).gc;
	if (!gc) throw new Error("run with node --expose-gc");
	console.log(JSON.stringify(cases.map((waiters) => measureCase(waiters, gc))));
}

function runChild(cases: readonly number[], extraFlags: string[] = []): Promise<string> {
	return new Promise((done, failed) => {
		const child = spawn(
			process.execPath,
			["--expose-gc", ...extraFlags, import.meta.filename, "--measure", ...cases.map(String)],
			{ stdio: ["ignore", "pipe", "inherit"] },
		);
		let output = "";
		child.stdout.on("data", (chunk: Buffer) => {
			output += chunk.toString();
		});
		child.once("error", failed);
		child.once("exit", (code) =>
			code === 0 ? done(output) : failed(new Error(`core measurement exited with ${code}`)),
		);
	});
}

interface ProfileNode {
	id: number;
	callFrame: { functionName: string; url: string; lineNumber: number };
}

/** The frames with the most self time in a .cpuprofile, as "share function file:line". */
async function topFrames(path: string, count: number): Promise<string[]> {
	const profile = JSON.parse(await readFile(path, "utf8")) as {
		nodes: ProfileNode[];
		samples: number[];
	};
	const names = new Map(
		profile.nodes.map((node) => {
			const { functionName, url, lineNumber } = node.callFrame;
			const file = url === "" ? "" : ` ${url.split("/").slice(-2).join("/")}:${lineNumber + 1}`;
			return [node.id, `${functionName || "(anonymous)"}${file}`];
		}),
	);
	const self = new Map<string, number>();
	for (const id of profile.samples) {
		const name = names.get(id) ?? "?";
		self.set(name, (self.get(name) ?? 0) + 1);
	}
	return [...self]
		.sort((a, b) => b[1] - a[1])
		.slice(0, count)
		.map(([name, samples]) => `${((samples / profile.samples.length) * 100).toFixed(1)}% ${name}`);
}

/** Runs the cases again under --cpu-prof; returns the top frames and where the profile is. */
async function profile(cases: readonly number[]): Promise<{ path: string; top: string[] }> {
	const name = `core-${cases.join("-")}.cpuprofile`;
	await rm(join(RESULTS_DIRECTORY, name), { force: true });
	await runChild(cases, [
		"--cpu-prof",
		`--cpu-prof-dir=${RESULTS_DIRECTORY}`,
		`--cpu-prof-name=${name}`,
	]);
	const path = join(RESULTS_DIRECTORY, name);
	if (!(await readdir(RESULTS_DIRECTORY)).includes(name)) throw new Error(`no profile at ${path}`);
	return { path: relative(process.cwd(), path), top: await topFrames(path, 12) };
}

async function run(): Promise<boolean> {
	console.log(
		`core: ${REPETITIONS} × ${DECISIONS_PER_REPETITION} decisions per case, ${MAX_CONCURRENT} slots, ${TENANTS} tenants, mixed priorities`,
	);
	const results = JSON.parse(await runChild(WAITER_COUNTS)) as CaseResult[];
	const rows: Row[] = results.map((result) => {
		const target = TARGETS[result.waiters];
		return {
			label: `${result.waiters} waiters: decisions/s (median of ${REPETITIONS})`,
			value: Math.round(result.decisionsPerSecond).toLocaleString("en-US"),
			...(target !== undefined && {
				target: `≥ ${target.toLocaleString("en-US")}`,
				met: result.decisionsPerSecond >= target,
			}),
		};
	});
	for (const result of results) {
		if (result.bytesPerWaiter !== undefined) {
			rows.push({
				label: `${result.waiters} waiters: heap per waiter after GC`,
				value: `${Math.round(result.bytesPerWaiter)} bytes`,
			});
		}
	}
	printTable("core — the pure scheduler in Node", rows);

	const missed = results.filter((result) => {
		const target = TARGETS[result.waiters];
		return target !== undefined && result.decisionsPerSecond < target;
	});
	const profiled = missed.length === 0 ? undefined : await profile(missed.map((r) => r.waiters));
	if (profiled) {
		console.log(`  top self-time frames (${profiled.path}):`);
		for (const frame of profiled.top) console.log(`    ${frame}`);
	}
	return saveReport("core", rows, {
		setup: {
			decision:
				"no waiters: a submit that is admitted (its release and a tick timed with it); with waiters: a release + the tick that admits the next waiter, or a submit that is queued",
			scheduler: `${MAX_CONCURRENT} concurrency slots (the only binding limit), ${TENANTS} tenants, priorities ${PRIORITY_CYCLE.join("/")}, the clock advancing 1 µs per round`,
			memory:
				"heapUsed after GC with the waiters queued, minus before any submit, over the waiter count (each waiter's Ask object included)",
			runtime: `node ${process.version} --expose-gc, a child process of its own`,
		},
		results,
		profile: profiled,
	});
}

export const core: Scenario = {
	name: "core",
	summary: "pure scheduler decisions/s with 0, 1k and 100k waiters; memory per waiter",
	run,
};

if (process.argv[2] === "--measure" && import.meta.filename === resolve(process.argv[1] ?? "")) {
	measureInChild(process.argv.slice(3).map(Number));
}
