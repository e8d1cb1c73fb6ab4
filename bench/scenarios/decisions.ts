// How fast one Pool object decides: many concurrent Worker invocations each loop acquire + release
// on the same Pool over native RPC (the bench Worker's /bench/decisions), and the SQLite rows the
// object writes per decision, from its storageStats(). Then whole requests through tollbooth with
// allowances: how many one Pool serves per second, and how many calls to the Pool each costs.
import { SMALL_CHAT_BODY } from "../lib/bench-gateway.ts";
import { BENCH_POOL, type BenchStack, startBenchStack } from "../lib/bench-stack.ts";
import { HttpClient, runClosedLoop } from "../lib/http-client.ts";
import { finish, type Row } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";

/** Worker invocations looping at once, one level per phase. */
const CONCURRENCIES = [1, 16, 64] as const;
const PHASE_MS = 4_000;
const WARMUP_MS = 1_000;
const RPC_SAMPLES = 300;
const DECISIONS_PER_SECOND_TARGET = 2_000;
const ROWS_PER_DECISION_TARGET = 1;
/** Connections of the closed loop of whole requests through tollbooth with allowances. */
const REQUEST_CONNECTIONS = 64;
/** Requests a second one Pool must be able to serve with allowances, as a multiple of decisions/s. */
const WITH_ALLOWANCES_TARGET = 3;

interface WithAllowances {
	requests: number;
	perSecond: number;
	poolCalls: number;
	poolCallsPerRequest: number;
}

/** Whole requests through tollbooth (allowances on) in a closed loop, and the Pool calls they made. */
async function withAllowances(stack: BenchStack, ms: number): Promise<WithAllowances> {
	const calls = () =>
		getJson<Record<string, number>>(stack.gateway.origin, "/bench/pool-calls?reset=1");
	const client = new HttpClient(REQUEST_CONNECTIONS);
	const target = stack.target("tollbooth", SMALL_CHAT_BODY);
	await calls();
	try {
		const loop = await runClosedLoop({
			client,
			connections: REQUEST_CONNECTIONS,
			durationMs: ms,
			next: () => target,
			record() {},
		});
		const poolCalls = (await calls())[BENCH_POOL] ?? 0;
		return {
			requests: loop.completed,
			perSecond: (loop.completed * 1000) / loop.elapsedMs,
			poolCalls,
			poolCallsPerRequest: poolCalls / Math.max(1, loop.completed),
		};
	} finally {
		client.close();
	}
}

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
	let allowances: WithAllowances;
	try {
		await phase(origin, 4, WARMUP_MS);
		rpc = await getJson<RpcCosts>(origin, `/bench/rpc-costs?pool=${BENCH_POOL}&n=${RPC_SAMPLES}`);
		for (const concurrency of CONCURRENCIES)
			phases.push(await phase(origin, concurrency, PHASE_MS));
		allowances = await withAllowances(stack, PHASE_MS);
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
			label: `with allowances, ${REQUEST_CONNECTIONS} connections: requests/s, Pool calls per request`,
			value: `${allowances.perSecond.toFixed(0)}, ${allowances.poolCallsPerRequest.toFixed(3)}`,
		},
		{
			// Today each request costs the Pool one decision (two calls); with allowances, this many.
			label:
				"requests/s one Pool can serve with allowances (its call rate at peak / calls per request)",
			value: `${((2 * best.perSecond) / Math.max(allowances.poolCallsPerRequest, 1e-9)).toFixed(0)} (today ${best.perSecond.toFixed(0)})`,
			target: `≥ ${WITH_ALLOWANCES_TARGET}× today`,
			met: 2 / Math.max(allowances.poolCallsPerRequest, 1e-9) >= WITH_ALLOWANCES_TARGET,
		},
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
		withAllowances: allowances,
	});
}

export const decisions: Scenario = {
	name: "decisions",
	summary: "acquire + release pairs per second on one Pool object, storage rows per decision",
	run,
};
