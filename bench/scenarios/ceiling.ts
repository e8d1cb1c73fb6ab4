// Requests per second through tollbooth's whole path against a zero-latency provider, as a share of
// what the same isolate does as a pass-through Worker and as a Worker that answers a constant; with
// allowances (the default) and without, and how many Pool calls each request cost.
import { SMALL_CHAT_BODY } from "../lib/bench-gateway.ts";
import { BENCH_POOL, type BenchStack, startBenchStack, type Variant } from "../lib/bench-stack.ts";
import { HttpClient, runClosedLoop } from "../lib/http-client.ts";
import { finish, percent, type Row, writeChart } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";
import { lineChart } from "../lib/svg-chart.ts";

const VARIANTS: readonly Variant[] = ["constant", "passthrough", "pooled", "tollbooth", "strict"];
/** The pool each tollbooth variant goes through, whose calls the bench Worker counts. */
const POOL_OF: Partial<Record<Variant, string>> = { tollbooth: BENCH_POOL, strict: "strict" };
/** Closed-loop connections; BENCH_CONNECTIONS sets another (a sweep). */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const WARMUP_MS = 3_000;
/**
 * Unmeasured load just before each measured phase: a variant idle through the others' phases
 * would otherwise be measured starting cold (tollbooth's allowances last a second, so every
 * phase would begin with all connections asking the Pool), which is not its ceiling.
 */
const PHASE_WARMUP_MS = 300;
const ROUNDS = 5;
const PHASE_MS = 1_000;
const OF_PASSTHROUGH_TARGET = 0.8;
const OF_CONSTANT_TARGET = 0.5;

interface PhaseResult {
	round: number;
	variant: Variant;
	completed: number;
	failed: number;
	non2xx: number;
	elapsedMs: number;
	perSecond: number;
	/** Calls tollbooth made to the variant's Pool during the phase (tollbooth variants only). */
	poolCalls: number;
}

async function poolCallsSinceLastRead(stack: BenchStack): Promise<Record<string, number>> {
	const response = await fetch(new URL("/bench/pool-calls?reset=1", stack.gateway.origin));
	return (await response.json()) as Record<string, number>;
}

async function phase(
	stack: BenchStack,
	variant: Variant,
	durationMs: number,
	round: number,
): Promise<PhaseResult> {
	const client = new HttpClient(CONNECTIONS);
	const target = stack.target(variant, SMALL_CHAT_BODY);
	let non2xx = 0;
	await poolCallsSinceLastRead(stack);
	try {
		const loop = await runClosedLoop({
			client,
			connections: CONNECTIONS,
			durationMs,
			next: () => target,
			record(_target, timing) {
				if (timing.status < 200 || timing.status > 299) non2xx += 1;
			},
		});
		if (loop.errors.length > 0) console.log(`  ${variant}: ${loop.errors.join("; ")}`);
		const pool = POOL_OF[variant];
		// Batches still in flight at the end count toward the next read, which is discarded.
		const calls = await poolCallsSinceLastRead(stack);
		return {
			round,
			variant,
			completed: loop.completed,
			failed: loop.failed,
			non2xx,
			elapsedMs: loop.elapsedMs,
			perSecond: (loop.completed * 1000) / loop.elapsedMs,
			poolCalls: pool === undefined ? 0 : (calls[pool] ?? 0),
		};
	} finally {
		client.close();
	}
}

async function run(): Promise<boolean> {
	const stack = await startBenchStack();
	console.log(
		`ceiling: ${CONNECTIONS} keep-alive connections, ${ROUNDS} rounds × ${PHASE_MS / 1000} s per variant (gateway ${stack.gateway.origin})`,
	);
	const phases: PhaseResult[] = [];
	try {
		for (const variant of VARIANTS) await phase(stack, variant, WARMUP_MS / VARIANTS.length, 0);
		for (let round = 1; round <= ROUNDS; round++) {
			// Each round starts with a different variant, so none always follows the same one.
			for (let index = 0; index < VARIANTS.length; index++) {
				const variant = VARIANTS[(index + round) % VARIANTS.length] as Variant;
				await phase(stack, variant, PHASE_WARMUP_MS, round);
				phases.push(await phase(stack, variant, PHASE_MS, round));
			}
		}
	} finally {
		await stack.stop();
	}

	const rate = (variant: Variant) => {
		const mine = phases.filter((result) => result.variant === variant);
		const completed = mine.reduce((total, result) => total + result.completed, 0);
		const elapsedMs = mine.reduce((total, result) => total + result.elapsedMs, 0);
		return (completed * 1000) / elapsedMs;
	};
	const rates = Object.fromEntries(VARIANTS.map((variant) => [variant, rate(variant)])) as Record<
		Variant,
		number
	>;
	const callsPerRequest = (variant: Variant) => {
		const mine = phases.filter((result) => result.variant === variant);
		const calls = mine.reduce((total, result) => total + result.poolCalls, 0);
		return (
			calls /
			Math.max(
				1,
				mine.reduce((total, result) => total + result.completed, 0),
			)
		);
	};
	const ofPassthrough = rates.tollbooth / rates.passthrough;
	const ofConstant = rates.tollbooth / rates.constant;
	const failures = phases.reduce((total, result) => total + result.failed + result.non2xx, 0);
	const rows: Row[] = [
		...VARIANTS.map((variant) => ({
			label: `${variant} requests/s`,
			value: `${rates[variant].toFixed(0)} (rounds: ${phases
				.filter((result) => result.variant === variant)
				.map((result) => result.perSecond.toFixed(0))
				.join(", ")})`,
		})),
		{
			label: "tollbooth / pass-through",
			value: percent(ofPassthrough),
			target: `≥ ${percent(OF_PASSTHROUGH_TARGET, 0)}`,
			met: ofPassthrough >= OF_PASSTHROUGH_TARGET,
		},
		{
			label: "tollbooth / constant",
			value: percent(ofConstant),
			target: `≥ ${percent(OF_CONSTANT_TARGET, 0)}`,
			met: ofConstant >= OF_CONSTANT_TARGET,
		},
		{
			label: "pooled (Pool round trips only) / pass-through",
			value: percent(rates.pooled / rates.passthrough),
		},
		{
			label: "allowances off / pass-through",
			value: percent(rates.strict / rates.passthrough),
		},
		...(["tollbooth", "strict"] as const).map((variant) => ({
			label: `${variant === "strict" ? "allowances off" : "tollbooth"}: Pool calls per request`,
			value: callsPerRequest(variant).toFixed(3),
		})),
		{ label: "failed or not 2xx", value: String(failures), target: "0", met: failures === 0 },
	];
	const title = `ceiling — closed loop, ${CONNECTIONS} connections, same isolate`;

	const chart = await writeChart(
		"ceiling",
		lineChart({
			title: "Requests per second in each interleaved round",
			xLabel: "round",
			yLabel: "requests/s",
			xMax: ROUNDS,
			series: VARIANTS.map((variant) => ({
				name: variant,
				points: phases
					.filter((result) => result.variant === variant)
					.map((result) => [result.round, result.perSecond] as const),
			})),
		}),
	);
	return finish("ceiling", title, rows, {
		setup: {
			runtime:
				"one wrangler dev (its proxy workerd in front of the user workerd, which every variant crosses); all variants in the bench Worker's one isolate",
			load: `closed loop from Node (node:http), ${CONNECTIONS} keep-alive connections; variants take turns in ${PHASE_MS} ms phases, each after ${PHASE_WARMUP_MS} ms unmeasured, ${ROUNDS} rounds, order rotated each round`,
			provider: "Node mock on its own thread, zero latency",
		},
		rates,
		ofPassthrough,
		ofConstant,
		poolCallsPerRequest: {
			tollbooth: callsPerRequest("tollbooth"),
			strict: callsPerRequest("strict"),
		},
		phases,
		chart,
	});
}

export const ceiling: Scenario = {
	name: "ceiling",
	summary: "requests/s through tollbooth vs a pass-through and a constant Worker, same isolate",
	run,
};
