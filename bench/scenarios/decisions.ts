// How fast one Pool object decides: many concurrent Worker invocations each loop acquire + release
// on the same Pool over native RPC (the bench Worker's /bench/decisions), and the SQLite rows the
// object writes per decision, from its storageStats().
import { BENCH_POOL, startBenchStack } from "../lib/bench-stack.ts";
import { finish, type Row } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";

/** Worker invocations looping at once, one level per phase. */
const CONCURRENCIES = [1, 16, 64] as const;
const PHASE_MS = 4_000;
const WARMUP_MS = 1_000;
const RPC_SAMPLES = 300;
const DECISIONS_PER_SECOND_TARGET = 2_000;
const ROWS_PER_DECISION_TARGET = 1;

interface StorageStats {
	writes: number;
	rowsWritten: number;
}

interface LoopAnswer {
	admitted: number;
	refused: number;
	elapsedMs: number;
}

interface RpcCosts {
	n: number;
	statusMs: number;
	acquireMs: number;
	releaseMs: number;
}

interface PhaseResult {
	concurrency: number;
	decisions: number;
	refused: number;
	elapsedMs: number;
	perSecond: number;
	writes: number;
	rowsWritten: number;
	rowsPerDecision: number;
}

async function getJson<T>(origin: string, path: string): Promise<T> {
	const response = await fetch(new URL(path, origin));
	const text = await response.text();
	if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
	return JSON.parse(text) as T;
}

async function phase(origin: string, concurrency: number, ms: number): Promise<PhaseResult> {
	const stats = () => getJson<StorageStats>(origin, `/bench/storage-stats?pool=${BENCH_POOL}`);
	const before = await stats();
	const startedMs = performance.now();
	const answers = await Promise.all(
		Array.from({ length: concurrency }, () =>
			getJson<LoopAnswer>(origin, `/bench/decisions?pool=${BENCH_POOL}&ms=${ms}`),
		),
	);
	const elapsedMs = performance.now() - startedMs;
	const after = await stats();
	const decisions = answers.reduce((total, answer) => total + answer.admitted, 0);
	const rowsWritten = after.rowsWritten - before.rowsWritten;
	return {
		concurrency,
		decisions,
		refused: answers.reduce((total, answer) => total + answer.refused, 0),
		elapsedMs,
		perSecond: (decisions * 1000) / elapsedMs,
		writes: after.writes - before.writes,
		rowsWritten,
		rowsPerDecision: rowsWritten / Math.max(1, decisions),
	};
}

async function run(): Promise<boolean> {
	const stack = await startBenchStack();
	const origin = stack.gateway.origin;
	console.log(`decisions: acquire + release loops on Pool "${BENCH_POOL}" (gateway ${origin})`);
	const phases: PhaseResult[] = [];
	let rpc: RpcCosts;
	try {
		await phase(origin, 4, WARMUP_MS);
		rpc = await getJson<RpcCosts>(origin, `/bench/rpc-costs?pool=${BENCH_POOL}&n=${RPC_SAMPLES}`);
		for (const concurrency of CONCURRENCIES)
			phases.push(await phase(origin, concurrency, PHASE_MS));
	} finally {
		await stack.stop();
	}

	const best = phases.reduce((top, result) => (result.perSecond > top.perSecond ? result : top));
	const decisions = phases.reduce((total, result) => total + result.decisions, 0);
	const rows = phases.reduce((total, result) => total + result.rowsWritten, 0);
	const rowsPerDecision = rows / Math.max(1, decisions);
	const refused = phases.reduce((total, result) => total + result.refused, 0);
	const table: Row[] = [
		...phases.map((result) => ({
			label: `${result.concurrency} concurrent loops`,
			value: `${result.perSecond.toFixed(0)} decisions/s, ${result.rowsPerDecision.toFixed(2)} rows each`,
		})),
		{
			label: `peak (${best.concurrency} loops)`,
			value: `${best.perSecond.toFixed(0)} decisions/s`,
			target: `≥ ${DECISIONS_PER_SECOND_TARGET}`,
			met: best.perSecond >= DECISIONS_PER_SECOND_TARGET,
		},
		{
			label: "storage rows written per decision",
			value: `${rowsPerDecision.toFixed(2)} (${rows} rows / ${decisions})`,
			target: `≤ ${ROWS_PER_DECISION_TARGET}`,
			met: rowsPerDecision <= ROWS_PER_DECISION_TARGET,
		},
		{ label: "refused acquires", value: String(refused), target: "0", met: refused === 0 },
		{
			label: "one RPC, mean: status / acquire / release",
			value: `${rpc.statusMs.toFixed(2)} / ${rpc.acquireMs.toFixed(2)} / ${rpc.releaseMs.toFixed(2)} ms`,
		},
	];
	const title = "decisions — one Pool object; a decision is one acquire + its release";
	return finish("decisions", title, table, {
		setup: {
			decision:
				"one acquire() that admits plus the release() of that lease: two RPCs and two settles of the Pool",
			load: "N concurrent requests to the bench Worker's /bench/decisions, each an invocation that loops acquire/release on env.POOL.getByName(pool) over native RPC; the Worker and the Pool in one wrangler dev",
			pool: "limits far above the load (nothing queues); storage rows from Pool.storageStats() before and after each phase",
			rpcCosts: `mean of ${RPC_SAMPLES} sequential calls of each kind from one invocation; status() reads only, so it is the bare RPC round trip`,
		},
		phases,
		peak: best,
		rowsPerDecision,
		rpcCosts: rpc,
	});
}

export const decisions: Scenario = {
	name: "decisions",
	summary: "acquire + release pairs per second on one Pool object, storage rows per decision",
	run,
};
