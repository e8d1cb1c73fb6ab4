// What tollbooth adds to one request: the same small chat request straight to the mock provider,
// through a Worker that only forwards, and through tollbooth, interleaved, at concurrency 1, 8 and
// 32; a fourth way (forward with only the Pool's acquire and release) splits the Pool's share out,
// and a fifth (tollbooth through a pool with allowances off) shows what allowances save. Requests
// enter at the runtime's own socket, as a deployed Worker is reached; the pass-through and
// tollbooth are also sent through wrangler dev's proxy Worker, which a deployment does not have.
import { SMALL_CHAT_BODY } from "../lib/bench-gateway.ts";
import {
	type BenchStack,
	type Entrance,
	startBenchStack,
	targetName,
	type Variant,
} from "../lib/bench-stack.ts";
import {
	HttpClient,
	interleaved,
	runClosedLoop,
	type Target,
	type Timing,
} from "../lib/http-client.ts";
import { finish, type Row, writeChart } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";
import { medianDifferenceInterval, type Summary, summarize } from "../lib/stats.ts";
import { cumulative, lineChart } from "../lib/svg-chart.ts";

const VARIANTS: readonly Variant[] = ["direct", "passthrough", "pooled", "tollbooth", "strict"];
/** Sent through wrangler dev's proxy as well: the comparison the target is about, as `wrangler dev` serves it. */
const THROUGH_WRANGLER: readonly Variant[] = ["passthrough", "tollbooth"];
const WARMUP_MS = 3_000;
const PHASE_MS = 10_000;
/**
 * Concurrency 1 gets four times as long: its target is a difference of medians near 1 ms, and the
 * ~200 samples a way gets in 10 s put that difference within ±0.3 ms of noise.
 */
const SERIAL_PHASE_MS = 40_000;
const CONCURRENCIES = [1, 8, 32] as const;
const ADDED_P50_TARGET_MS = 1;
const ADDED_P99_TARGET_MS = 5;

interface Added {
	p50: number;
	p95: number;
	p99: number;
	/** Where the added p50 could lie by chance alone: a 95% bootstrap interval. */
	p50IntervalMs: [number, number];
}

interface Phase {
	concurrency: number;
	/** Where the variants entered: the runtime's socket, or wrangler's port where it was not found. */
	entrance: Entrance;
	requests: number;
	failed: number;
	errors: string[];
	non2xx: Record<string, number>;
	/** By target name: "direct", "tollbooth (runtime)", "tollbooth (wrangler)"… */
	latencyMs: Record<string, Summary>;
	/** tollbooth minus the pass-through Worker, percentile by percentile. */
	addedMs: Added;
	/** The same for the Pool round trips alone (pooled minus pass-through). */
	poolAddedMs: Added;
	/** tollbooth with allowances off minus the pass-through Worker. */
	strictAddedMs: Added;
	/** tollbooth minus the pass-through, both through wrangler dev's proxy (when the entrance is the runtime). */
	throughWranglerAddedMs: Added | undefined;
	samples: Record<string, number[]>;
}

/** The targets of one phase: each variant at `entrance`, and the wrangler comparison beside it. */
function targetsOf(stack: BenchStack, entrance: Entrance): Target[] {
	const main = VARIANTS.map((variant) => stack.target(variant, SMALL_CHAT_BODY, entrance));
	if (entrance === "wrangler") return main;
	return [
		...main,
		...THROUGH_WRANGLER.map((variant) => stack.target(variant, SMALL_CHAT_BODY, "wrangler")),
	];
}

async function measure(stack: BenchStack, concurrency: number, durationMs: number): Promise<Phase> {
	const entrance = stack.deployedLike;
	const targets = targetsOf(stack, entrance);
	const client = new HttpClient(concurrency * targets.length);
	const samples: Record<string, number[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
	const non2xx: Record<string, number> = {};
	try {
		const loop = await runClosedLoop({
			client,
			connections: concurrency,
			durationMs,
			next: interleaved(targets, concurrency, concurrency),
			record(target, timing: Timing) {
				if (timing.status < 200 || timing.status > 299) {
					const key = `${target.name} ${timing.status}`;
					non2xx[key] = (non2xx[key] ?? 0) + 1;
				}
				samples[target.name]?.push(timing.totalMs);
			},
		});
		const latencyMs = Object.fromEntries(
			targets.map((target) => [target.name, summarize(samples[target.name] ?? [])]),
		);
		const added = (variant: Variant, baseline: Variant, via: Entrance): Added => {
			const name = (v: Variant) => targetName(v, via);
			const of = latencyMs[name(variant)] as Summary;
			const base = latencyMs[name(baseline)] as Summary;
			return {
				p50: of.p50 - base.p50,
				p95: of.p95 - base.p95,
				p99: of.p99 - base.p99,
				p50IntervalMs: medianDifferenceInterval(
					samples[name(baseline)] ?? [],
					samples[name(variant)] ?? [],
				),
			};
		};
		return {
			concurrency,
			entrance,
			requests: loop.completed,
			failed: loop.failed,
			errors: loop.errors,
			non2xx,
			latencyMs,
			addedMs: added("tollbooth", "passthrough", entrance),
			poolAddedMs: added("pooled", "passthrough", entrance),
			strictAddedMs: added("strict", "passthrough", entrance),
			throughWranglerAddedMs:
				entrance === "runtime" ? added("tollbooth", "passthrough", "wrangler") : undefined,
			samples,
		};
	} finally {
		client.close();
	}
}

const ms = (value: number) => `${value.toFixed(2)} ms`;

async function run(): Promise<boolean> {
	const stack = await startBenchStack();
	const entrance = stack.runtimeOrigin
		? `the runtime's socket ${stack.runtimeOrigin}`
		: "wrangler's port (the runtime's socket was not found)";
	console.log(
		`overhead: gateway ${stack.gateway.origin}, entered at ${entrance}; mock ${stack.mock.url}`,
	);
	const phases: Phase[] = [];
	try {
		await measure(stack, 4, WARMUP_MS);
		for (const concurrency of CONCURRENCIES) {
			phases.push(
				await measure(stack, concurrency, concurrency === 1 ? SERIAL_PHASE_MS : PHASE_MS),
			);
		}
	} finally {
		await stack.stop();
	}

	const withInterval = (added: Added) =>
		`${ms(added.p50)} (${added.p50IntervalMs.map(ms).join(" to ")})`;
	const rows: Row[] = [];
	for (const phase of phases) {
		const c = phase.concurrency;
		for (const [name, s] of Object.entries(phase.latencyMs)) {
			rows.push({
				label: `c=${c} ${name} p50 / p95 / p99 (n)`,
				value: `${ms(s.p50)} / ${ms(s.p95)} / ${ms(s.p99)} (${s.count})`,
			});
		}
		const atOne = c === 1;
		rows.push(
			{
				label: `c=${c} tollbooth − pass-through p50 (95% interval)`,
				value: withInterval(phase.addedMs),
				...(atOne && {
					target: `≤ ${ADDED_P50_TARGET_MS} ms`,
					met: phase.addedMs.p50 <= ADDED_P50_TARGET_MS,
				}),
			},
			{ label: `c=${c} tollbooth − pass-through p95`, value: ms(phase.addedMs.p95) },
			{
				label: `c=${c} tollbooth − pass-through p99`,
				value: ms(phase.addedMs.p99),
				...(atOne && {
					target: `≤ ${ADDED_P99_TARGET_MS} ms`,
					met: phase.addedMs.p99 <= ADDED_P99_TARGET_MS,
				}),
			},
			{
				label: `c=${c}   of which Pool round trips p50 / p99`,
				value: `${ms(phase.poolAddedMs.p50)} / ${ms(phase.poolAddedMs.p99)}`,
			},
			{
				label: `c=${c} allowances off − pass-through p50 / p99`,
				value: `${ms(phase.strictAddedMs.p50)} / ${ms(phase.strictAddedMs.p99)}`,
			},
		);
		if (phase.throughWranglerAddedMs) {
			rows.push({
				label: `c=${c} through wrangler's proxy: tollbooth − pass-through p50 / p99`,
				value: `${withInterval(phase.throughWranglerAddedMs)} / ${ms(phase.throughWranglerAddedMs.p99)}`,
			});
		}
		rows.push({
			label: `c=${c} failed or not 2xx`,
			value: `${phase.failed} / ${JSON.stringify(phase.non2xx)}`,
			target: "none",
			met: phase.failed === 0 && Object.keys(phase.non2xx).length === 0,
		});
	}

	const charts = await Promise.all(
		phases.map((phase) =>
			writeChart(
				`overhead-c${phase.concurrency}`,
				lineChart({
					title: `Latency distribution at concurrency ${phase.concurrency}`,
					xLabel: "latency (ms)",
					yLabel: "% of requests at or below",
					xMax: Math.max(...Object.values(phase.latencyMs).map((s) => s.p99)) * 1.2,
					yMax: 100,
					series: Object.entries(phase.samples).map(([name, samples]) => ({
						name,
						points: cumulative(samples),
					})),
				}),
			),
		),
	);
	return finish("overhead", "overhead — one small chat request five ways, interleaved", rows, {
		setup: {
			entrance:
				"the variants enter the bench Worker at the runtime's own socket, as a deployed Worker is reached; '… via wrangler' targets enter at wrangler dev's port, through its proxy Worker in a second workerd",
			variants: {
				direct: "Node client → Node mock provider (own thread, zero latency)",
				passthrough: "→ bench Worker /bench/passthrough (fetch and relay, no logic) → mock",
				pooled:
					"→ bench Worker /bench/pooled: Pool acquire RPC, fetch, release RPC after the answer",
				tollbooth:
					"→ tollbooth in the same isolate (auth, estimate, admission from an allowance or a Pool acquire, forward, release) → mock",
				strict: "→ tollbooth through a pool with allowances off: a Pool acquire for every request",
			},
			interleaving:
				"each connection sends the five variants (and the two through wrangler's proxy) in a shuffled order every round",
			warmupMs: WARMUP_MS,
			phaseMs: PHASE_MS,
			serialPhaseMs: SERIAL_PHASE_MS,
			client: "node:http, keep-alive; latency from request start to the last body byte",
		},
		phases: phases.map(({ samples: _samples, ...phase }) => phase),
		charts,
	});
}

export const overhead: Scenario = {
	name: "overhead",
	summary: "latency tollbooth adds over a pass-through Worker, at concurrency 1, 8 and 32",
	run,
};
