// What a cost budget adds to one request: the same small chat request through tollbooth for a
// tenant without a budget and for one with token and cost budgets far from their limits
// (spending this isolate's allowance), interleaved at concurrency 1.
import { BENCH_BUDGETED_KEY, SMALL_CHAT_BODY } from "../lib/bench-gateway.ts";
import { startBenchStack } from "../lib/bench-stack.ts";
import { HttpClient, interleaved, runClosedLoop, type Target } from "../lib/http-client.ts";
import { finish, type Row } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";
import { type Summary, summarize } from "../lib/stats.ts";

const WARMUP_MS = 3_000;
const PHASE_MS = 10_000;
const ADDED_P50_TARGET_MS = 1;
const ms = (value: number) => `${value.toFixed(2)} ms`;

async function run(): Promise<boolean> {
	const stack = await startBenchStack();
	console.log(`budgets: gateway ${stack.gateway.origin}, mock ${stack.mock.url}`);
	const off = stack.target("tollbooth", SMALL_CHAT_BODY);
	const on: Target = {
		...off,
		name: "budgeted",
		headers: { ...off.headers, authorization: `Bearer ${BENCH_BUDGETED_KEY}` },
	};
	const samples: Record<string, number[]> = { tollbooth: [], budgeted: [] };
	const non2xx: Record<string, number> = {};
	let failed = 0;
	const client = new HttpClient(2);
	try {
		for (const [durationMs, keep] of [
			[WARMUP_MS, false],
			[PHASE_MS, true],
		] as const) {
			const loop = await runClosedLoop({
				client,
				connections: 1,
				durationMs,
				next: interleaved([off, on], 1, 1),
				record(target, timing) {
					if (!keep) return;
					if (timing.status < 200 || timing.status > 299) {
						const key = `${target.name} ${timing.status}`;
						non2xx[key] = (non2xx[key] ?? 0) + 1;
					}
					samples[target.name]?.push(timing.totalMs);
				},
			});
			if (keep) failed = loop.failed;
		}
	} finally {
		client.close();
		await stack.stop();
	}
	const offSummary = summarize(samples.tollbooth ?? []) as Summary;
	const onSummary = summarize(samples.budgeted ?? []) as Summary;
	const added = onSummary.p50 - offSummary.p50;
	const rows: Row[] = [
		{
			label: "budgets off p50 / p99 (n)",
			value: `${ms(offSummary.p50)} / ${ms(offSummary.p99)} (${offSummary.count})`,
		},
		{
			label: "budgets on p50 / p99 (n)",
			value: `${ms(onSummary.p50)} / ${ms(onSummary.p99)} (${onSummary.count})`,
		},
		{
			label: "budgets on − off p50",
			value: ms(added),
			target: `≤ ${ADDED_P50_TARGET_MS} ms`,
			met: added <= ADDED_P50_TARGET_MS,
		},
		{ label: "budgets on − off p99", value: ms(onSummary.p99 - offSummary.p99) },
		{
			label: "failed or not 2xx",
			value: `${failed} / ${JSON.stringify(non2xx)}`,
			target: "none",
			met: failed === 0 && Object.keys(non2xx).length === 0,
		},
	];
	return finish("budgets", "budgets — a tenant with cost budgets vs one without, c=1", rows, {
		setup: {
			off: "tenant bench: no budget",
			on: "tenant bench-budgeted: tokensPerDay 1e12, costPerDayUsd 1e6 (allowances in use)",
			warmupMs: WARMUP_MS,
			phaseMs: PHASE_MS,
		},
	});
}

export const budgets: Scenario = {
	name: "budgets",
	summary: "latency a cost budget adds at concurrency 1 (budgets on vs off)",
	run,
};
