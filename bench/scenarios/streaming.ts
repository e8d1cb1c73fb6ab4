// What tollbooth adds to a stream: time to first byte and the gaps between chunks of a 500-chunk
// SSE answer (the mock paces chunks 2 ms apart), straight, through a pass-through Worker and through
// tollbooth, taking turns. Gaps that stay near the mock's show that nothing buffers the stream.
import { type BenchStack, startBenchStack, type Variant } from "../lib/bench-stack.ts";
import { HttpClient, type Timing } from "../lib/http-client.ts";
import { finish, type Row, writeChart } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";
import { type Summary, summarize } from "../lib/stats.ts";
import { cumulative, lineChart } from "../lib/svg-chart.ts";

const VARIANTS: readonly Variant[] = ["direct", "passthrough", "tollbooth"];
const CHUNKS = 500;
const CHUNK_DELAY_MS = 2;
const ROUNDS = 6;
const FIRST_BYTE_TARGET_MS = 2;
/** Not buffered: as many separate chunks reach the caller as through the pass-through Worker. */
const CHUNK_COUNT_SHARE_TARGET = 0.9;

const streamBody = JSON.stringify({
	model: "gpt-4o-mini",
	messages: [{ role: "user", content: "Tell me a long story" }],
	max_tokens: CHUNKS,
	stream: true,
});

interface VariantResult {
	firstByteMs: Summary;
	headersMs: Summary;
	totalMs: Summary;
	/** Body chunks read per stream. */
	chunks: Summary;
	bytes: Summary;
	gapMs: Summary;
	non2xx: number;
	gaps: number[];
}

function gapsOf(timing: Timing): number[] {
	const times = timing.chunkMs ?? [];
	return times.slice(1).map((time, index) => time - (times[index] as number));
}

async function run(): Promise<boolean> {
	const stack: BenchStack = await startBenchStack({
		chunkDelayMs: CHUNK_DELAY_MS,
		completionTokens: CHUNKS,
	});
	console.log(
		`streaming: ${ROUNDS} rounds of one ${CHUNKS}-chunk stream per variant (gateway ${stack.gateway.origin})`,
	);
	const timings: Record<string, Timing[]> = Object.fromEntries(VARIANTS.map((v) => [v, []]));
	const client = new HttpClient(VARIANTS.length);
	try {
		for (const variant of VARIANTS) await client.send(stack.target(variant, streamBody));
		for (let round = 0; round < ROUNDS; round++) {
			for (let index = 0; index < VARIANTS.length; index++) {
				const variant = VARIANTS[(index + round) % VARIANTS.length] as Variant;
				const timing = await client.send(stack.target(variant, streamBody), { chunkTimes: true });
				timings[variant]?.push(timing);
			}
		}
	} finally {
		client.close();
		await stack.stop();
	}

	const results = Object.fromEntries(
		VARIANTS.map((variant) => {
			const mine = timings[variant] ?? [];
			const gaps = mine.flatMap(gapsOf);
			const result: VariantResult = {
				firstByteMs: summarize(mine.map((timing) => timing.firstByteMs)),
				headersMs: summarize(mine.map((timing) => timing.headersMs)),
				totalMs: summarize(mine.map((timing) => timing.totalMs)),
				chunks: summarize(mine.map((timing) => timing.chunkMs?.length ?? 0)),
				bytes: summarize(mine.map((timing) => timing.bytes)),
				gapMs: summarize(gaps),
				non2xx: mine.filter((timing) => timing.status < 200 || timing.status > 299).length,
				gaps,
			};
			return [variant, result];
		}),
	) as Record<Variant, VariantResult>;
	const { direct, passthrough, tollbooth } = results as Record<
		"direct" | "passthrough" | "tollbooth",
		VariantResult
	>;
	const firstByteAddedMs = tollbooth.firstByteMs.p50 - passthrough.firstByteMs.p50;
	const chunkShare = tollbooth.chunks.p50 / passthrough.chunks.p50;
	const ms = (value: number) => `${value.toFixed(2)} ms`;
	const rows: Row[] = [
		...VARIANTS.map((variant) => {
			const result = results[variant];
			return {
				label: `${variant}: first byte p50 / p95, whole stream p50`,
				value: `${ms(result.firstByteMs.p50)} / ${ms(result.firstByteMs.p95)}, ${ms(result.totalMs.p50)}`,
			};
		}),
		...VARIANTS.map((variant) => {
			const result = results[variant];
			return {
				label: `${variant}: gap between chunks p50 / p95 / p99 / max`,
				value: `${ms(result.gapMs.p50)} / ${ms(result.gapMs.p95)} / ${ms(result.gapMs.p99)} / ${ms(result.gapMs.max)}`,
			};
		}),
		...VARIANTS.map((variant) => ({
			label: `${variant}: chunks read per stream p50 (bytes)`,
			value: `${results[variant].chunks.p50} (${results[variant].bytes.p50})`,
		})),
		{
			label: "tollbooth − pass-through, first byte p50",
			value: ms(firstByteAddedMs),
			target: `≤ ${FIRST_BYTE_TARGET_MS} ms`,
			met: firstByteAddedMs <= FIRST_BYTE_TARGET_MS,
		},
		{
			label: "tollbooth chunks / pass-through chunks (not buffered)",
			value: `${(chunkShare * 100).toFixed(0)}%`,
			target: `≥ ${CHUNK_COUNT_SHARE_TARGET * 100}%`,
			met: chunkShare >= CHUNK_COUNT_SHARE_TARGET,
		},
		{
			label: "streams not 2xx",
			value: String(direct.non2xx + passthrough.non2xx + tollbooth.non2xx),
			target: "0",
			met: direct.non2xx + passthrough.non2xx + tollbooth.non2xx === 0,
		},
	];
	const title = `streaming — ${CHUNKS} SSE chunks ${CHUNK_DELAY_MS} ms apart, interleaved`;

	const chart = await writeChart(
		"streaming",
		lineChart({
			title: `Gaps between chunks as the caller reads them (mock: ${CHUNK_DELAY_MS} ms)`,
			xLabel: "gap (ms)",
			yLabel: "% of gaps at or below",
			xMax: Math.max(...VARIANTS.map((variant) => results[variant].gapMs.p99)) * 1.5,
			yMax: 100,
			series: VARIANTS.map((variant) => ({
				name: variant,
				points: cumulative(results[variant].gaps),
			})),
		}),
	);
	return finish("streaming", title, rows, {
		setup: {
			mock: `Node mock on its own thread, ${CHUNKS} content chunks ${CHUNK_DELAY_MS} ms apart, no latency before the first`,
			order: "one stream at a time; each round sends one per variant, the order rotated each round",
			firstByte: "time from sending the request to the first body chunk read by the client",
			gaps: "time between successive body chunks as node:http hands them to the client",
		},
		results: Object.fromEntries(
			VARIANTS.map((variant) => {
				const { gaps: _gaps, ...result } = results[variant];
				return [variant, result];
			}),
		),
		firstByteAddedMs,
		chunkShare,
		chart,
	});
}

export const streaming: Scenario = {
	name: "streaming",
	summary: "first byte and chunk gaps of a 500-chunk SSE stream, tollbooth vs a pass-through",
	run,
};
