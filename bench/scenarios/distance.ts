// What a distant Pool costs a request: the bench Worker adds a round trip (default 80 ms, an object
// on another continent) to every call tollbooth makes to the "far" pools, with allowances and
// without, at concurrency 1 and 32 under light load, and under overload (3× a small pool's limit).
// Light load enters at the runtime's own socket (see bench/lib/runtime-socket.ts), as the overhead
// scenario does.
import { SMALL_CHAT_BODY } from "../lib/bench-gateway.ts";
import {
	type BenchStack,
	DEFAULT_POOL_DELAY_MS,
	startBenchStack,
	TIGHT_REQUESTS_PER_MINUTE,
	targetName,
	type Variant,
} from "../lib/bench-stack.ts";
import { HttpClient, interleaved, runClosedLoop } from "../lib/http-client.ts";
import { runOpenLoop } from "../lib/open-loop.ts";
import { finish, type Row } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";
import { type Summary, summarize } from "../lib/stats.ts";

const LIGHT: readonly Variant[] = ["passthrough", "far", "far-strict"];
const OVERLOADED: readonly Variant[] = ["far-tight", "far-tight-strict"];
const CONCURRENCIES = [1, 32] as const;
const WARMUP_MS = 3_000;
const PHASE_MS = 10_000;
const OVERLOAD_MS = 10_000;
/** Arrivals per second at each overloaded pool: three times its limit. */
const OVERLOAD_PER_SECOND = (3 * TIGHT_REQUESTS_PER_MINUTE) / 60;
const FAR_ADDED_P50_TARGET_MS = 2;

interface LightPhase {
	concurrency: number;
	latencyMs: Record<string, Summary>;
	non2xx: number;
	failed: number;
}

interface OverloadResult {
	variant: Variant;
	offered: number;
	ok: number;
	/** 429/503 told at once or after a wait: the pool turned them away. */
	turnedAway: number;
	other: number;
	okLatencyMs: Summary;
}

async function light(stack: BenchStack, concurrency: number, durationMs: number) {
	const client = new HttpClient(concurrency * LIGHT.length);
	const targets = LIGHT.map((variant) =>
		stack.target(variant, SMALL_CHAT_BODY, stack.deployedLike),
	);
	const samples: Record<string, number[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
	let non2xx = 0;
	try {
		const loop = await runClosedLoop({
			client,
			connections: concurrency,
			durationMs,
			next: interleaved(targets, concurrency),
			record(target, timing) {
				if (timing.status < 200 || timing.status > 299) non2xx += 1;
				samples[target.name]?.push(timing.totalMs);
			},
		});
		const latencyMs = Object.fromEntries(
			LIGHT.map((v) => [v, summarize(samples[targetName(v, stack.deployedLike)] ?? [])]),
		);
		return { concurrency, latencyMs, non2xx, failed: loop.failed } satisfies LightPhase;
	} finally {
		client.close();
	}
}

async function overload(stack: BenchStack, variant: Variant): Promise<OverloadResult> {
	const target = stack.target(variant, SMALL_CHAT_BODY);
	const run = await runOpenLoop({
		ratePerSecond: OVERLOAD_PER_SECOND,
		durationMs: OVERLOAD_MS,
		timeoutMs: 30_000,
		request: () =>
			new Request(target.url, { method: "POST", headers: target.headers, body: target.body }),
	});
	const ok = run.shots.filter((shot) => shot.status !== undefined && shot.status < 300);
	const turnedAway = run.shots.filter((shot) => shot.status === 429 || shot.status === 503);
	return {
		variant,
		offered: run.offered,
		ok: ok.length,
		turnedAway: turnedAway.length,
		other: run.offered - ok.length - turnedAway.length,
		okLatencyMs: summarize(ok.map((shot) => shot.endMs - shot.sentMs)),
	};
}

const ms = (value: number) => `${value.toFixed(2)} ms`;

async function run(): Promise<boolean> {
	const delayMs = Number(process.env.BENCH_POOL_DELAY_MS ?? DEFAULT_POOL_DELAY_MS);
	const stack = await startBenchStack({}, delayMs);
	console.log(
		`distance: every call to a "far" Pool takes ${delayMs} ms more (gateway ${stack.gateway.origin}, light load entered at ${stack.runtimeOrigin ?? stack.gateway.origin})`,
	);
	const phases: LightPhase[] = [];
	let overloaded: OverloadResult[];
	try {
		await light(stack, 4, WARMUP_MS);
		for (const concurrency of CONCURRENCIES) phases.push(await light(stack, concurrency, PHASE_MS));
		// Both overloaded pools at once: each its own object and limits, the same isolate.
		overloaded = await Promise.all(OVERLOADED.map((variant) => overload(stack, variant)));
	} finally {
		await stack.stop();
	}

	const rows: Row[] = [];
	for (const phase of phases) {
		const c = phase.concurrency;
		const of = (variant: Variant) => phase.latencyMs[variant] as Summary;
		const base = of("passthrough");
		for (const variant of ["far", "far-strict"] as const) {
			const s = of(variant);
			const added = s.p50 - base.p50;
			const atOne = c === 1 && variant === "far";
			rows.push({
				label: `c=${c} ${variant === "far" ? "allowances" : "allowances off"}: added p50 / p99 (n)`,
				value: `${ms(added)} / ${ms(s.p99 - base.p99)} (${s.count})`,
				...(atOne && {
					target: `p50 ≤ ${FAR_ADDED_P50_TARGET_MS} ms`,
					met: added <= FAR_ADDED_P50_TARGET_MS,
				}),
			});
		}
		rows.push({
			label: `c=${c} failed or not 2xx`,
			value: `${phase.failed} / ${phase.non2xx}`,
			target: "0",
			met: phase.failed === 0 && phase.non2xx === 0,
		});
	}
	for (const result of overloaded) {
		const s = result.okLatencyMs;
		rows.push({
			label: `overload 3×, ${result.variant.endsWith("strict") ? "allowances off" : "allowances"}: served / turned away / other`,
			value: `${result.ok} / ${result.turnedAway} / ${result.other} of ${result.offered}; served p50 ${ms(s.p50)}, p99 ${ms(s.p99)}`,
		});
	}
	const title = `distance — tollbooth with a Pool ${delayMs} ms away, over a pass-through Worker`;
	return finish("distance", title, rows, {
		setup: {
			delay: `the bench Worker adds ${delayMs} ms to every call tollbooth makes to a "far" pool (half before, half after)`,
			light: `closed loop, interleaved: pass-through, far (allowances), far-strict (allowances off); pools far above the load; ${PHASE_MS} ms per concurrency; entered at ${stack.deployedLike === "runtime" ? "the runtime's socket" : "wrangler's port"}`,
			overload: `open loop at ${OVERLOAD_PER_SECOND}/s into each of two pools of ${TIGHT_REQUESTS_PER_MINUTE} requests a minute (3×), maxWaitMs 2 s, for ${OVERLOAD_MS} ms, both at once`,
		},
		phases,
		overloaded,
	});
}

export const distance: Scenario = {
	name: "distance",
	summary:
		"latency added by a Pool 80 ms away, with and without allowances, light load and overload",
	run,
};
