// Acceptance of batches: a 2,000-line batch from the openai SDK through wrangler dev (local Queues
// and R2) against a provider that enforces the key's limit. Interactive `high` traffic at half the
// limit runs beside it and must keep its unloaded p95; alone, the batch must use ≥ 90% of the limit.
// BATCHES_KEY_RPM, BATCHES_PROVIDER_LATENCY_MS and BATCHES_INTERACTIVE_SHARE change the setting.
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import OpenAI, { toFile } from "openai";
import {
	BENCH_GATEWAY_KEY,
	BENCH_PROVIDER_KEY,
	SMALL_CHAT_BODY,
	startBenchGateway,
} from "../lib/bench-gateway.ts";
import { startMockThread } from "../lib/mock-thread.ts";
import { runOpenLoop, type Shot } from "../lib/open-loop.ts";
import { finish, milliseconds, percent, type Row } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";
import { summarize } from "../lib/stats.ts";
import { freePort } from "../lib/wrangler-dev.ts";

/** The key's limit, which the provider (the mock) enforces too: by default 20 requests a second. */
const KEY_RPM = Number(process.env.BATCHES_KEY_RPM ?? 1200);
const LINES = 2000;
/** Lines the provider always fails (500): they must end in the error file after every attempt. */
const ALWAYS_FAIL = 20;
/** wrangler.toml's max_retries + 1. */
const ATTEMPTS = 5;
/** A provider's answer takes this long (a short LLM call). */
const PROVIDER_LATENCY_MS = Number(process.env.BATCHES_PROVIDER_LATENCY_MS ?? 200);
/** Interactive traffic's share of the key's limit. */
const INTERACTIVE_SHARE = Number(process.env.BATCHES_INTERACTIVE_SHARE ?? 0.5);
const INTERACTIVE_RATE = (KEY_RPM / 60) * INTERACTIVE_SHARE;
const BASELINE_MS = 30_000;
const BESIDE_BATCH_MS = 45_000;
/** The window, with the batch alone, over which its use of the limit is measured. */
const ALONE_WINDOW_MS = 20_000;
const P95_TOLERANCE = 0.1;
const MIN_ALONE_USE = 0.9;
const DONE_TIMEOUT_MS = 8 * 60_000;
const FAIL_MARK = "always-fail";

/** What the provider saw: every request's kind and time, and its answers by status. */
interface ProviderLog {
	batchSentAtMs: number[];
	/** Interactive requests: when the provider got each, and how long it took to answer it. */
	interactive: { atMs: number; ms: number }[];
	failingAttempts: Map<string, number>;
	byStatus: Record<number, number>;
}

/**
 * In front of the mock: answers 500 to the always-failing lines and passes everything else on,
 * noting what it saw.
 */
async function startFront(mockUrl: string, log: ProviderLog) {
	const port = await freePort();
	const server = createServer(async (incoming: IncomingMessage, outgoing: ServerResponse) => {
		const receivedMs = performance.now();
		const chunks: Buffer[] = [];
		for await (const chunk of incoming) chunks.push(chunk as Buffer);
		const body = Buffer.concat(chunks).toString();
		const failing = /"content":"(always-fail-[0-9]+)"/.exec(body)?.[1];
		if (body.includes('"content":"line-') || failing) log.batchSentAtMs.push(performance.now());
		let status: number;
		let text: string;
		let headers: Record<string, string> = { "content-type": "application/json" };
		if (failing) {
			log.failingAttempts.set(failing, (log.failingAttempts.get(failing) ?? 0) + 1);
			status = 500;
			text = JSON.stringify({
				error: { message: "The server had an error", type: "server_error" },
			});
		} else {
			const response = await fetch(`${mockUrl}${incoming.url}`, {
				method: incoming.method,
				headers: {
					authorization: incoming.headers.authorization ?? "",
					"content-type": "application/json",
				},
				body: incoming.method === "GET" || incoming.method === "HEAD" ? undefined : body,
			});
			status = response.status;
			text = await response.text();
			headers = {};
			response.headers.forEach((value, name) => {
				if (name !== "content-length" && name !== "transfer-encoding") headers[name] = value;
			});
		}
		log.byStatus[status] = (log.byStatus[status] ?? 0) + 1;
		outgoing.writeHead(status, headers).end(text);
		if (body.includes("Say hello")) {
			log.interactive.push({ atMs: receivedMs, ms: performance.now() - receivedMs });
		}
	});
	await new Promise<void>((listening) => server.listen(port, "127.0.0.1", listening));
	return {
		url: `http://127.0.0.1:${port}`,
		close: () => new Promise<void>((closed) => server.close(() => closed())),
	};
}

function interactive(origin: string, durationMs: number) {
	return runOpenLoop({
		ratePerSecond: INTERACTIVE_RATE,
		durationMs,
		timeoutMs: 30_000,
		keepHeaders: ["x-tollbooth-queue-ms"],
		request: () =>
			new Request(`${origin}/openai/v1/chat/completions`, {
				method: "POST",
				headers: {
					authorization: `Bearer ${BENCH_GATEWAY_KEY}`,
					"content-type": "application/json",
					"x-priority": "high",
				},
				body: SMALL_CHAT_BODY,
			}),
	});
}

/** How long the pool kept interactive requests waiting: the share of latency admission decides. */
const queueP95Of = (shots: Shot[]) =>
	summarize(shots.map((shot) => Number(shot.headers["x-tollbooth-queue-ms"] ?? 0))).p95;

const p95Of = (shots: Shot[]) =>
	summarize(shots.filter((shot) => shot.status === 200).map((shot) => shot.endMs - shot.sentMs))
		.p95;

/**
 * CPU seconds spent so far by a process group (wrangler dev and its workerd processes), from
 * /proc; undefined where there is none. Where the gateway's time goes, per phase.
 */
function groupCpuSeconds(groupId: number): number | undefined {
	let ticks = 0;
	try {
		for (const pid of readdirSync("/proc")) {
			if (!/^[0-9]+$/.test(pid)) continue;
			try {
				const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
				// After "pid (comm) ": state ppid pgrp … utime (14th field) stime (15th).
				const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
				if (Number(fields[2]) === groupId) ticks += Number(fields[11]) + Number(fields[12]);
			} catch {
				// The process ended while it was read.
			}
		}
	} catch {
		return undefined;
	}
	return ticks / 100; // USER_HZ is 100 on Linux
}

/** A phase's CPU use by the gateway: share of one core, and CPU ms per request or line. */
function cpuMeter(groupId: number) {
	let lastSeconds = groupCpuSeconds(groupId);
	let lastMs = performance.now();
	return (handled: number) => {
		const seconds = groupCpuSeconds(groupId);
		const nowMs = performance.now();
		const used = seconds !== undefined && lastSeconds !== undefined ? seconds - lastSeconds : NaN;
		const share = used / ((nowMs - lastMs) / 1000);
		lastSeconds = seconds;
		lastMs = nowMs;
		return { share, msEach: (used * 1000) / handled };
	};
}

function batchFile(): string {
	const rows: string[] = [];
	for (let n = 0; n < LINES; n++) {
		const failing = n < ALWAYS_FAIL;
		const content = failing ? `${FAIL_MARK}-${n}` : `line-${n}`;
		rows.push(
			JSON.stringify({
				custom_id: `req-${n}`,
				method: "POST",
				url: "/v1/chat/completions",
				body: { model: "gpt-4o-mini", messages: [{ role: "user", content }], max_tokens: 16 },
			}),
		);
	}
	return rows.join("\n");
}

async function run(): Promise<boolean> {
	const log: ProviderLog = {
		batchSentAtMs: [],
		interactive: [],
		failingAttempts: new Map(),
		byStatus: {},
	};
	const mock = await startMockThread({
		requestsPerMinute: KEY_RPM,
		tokensPerMinute: 1e9,
		latencyMs: PROVIDER_LATENCY_MS,
		apiKey: BENCH_PROVIDER_KEY,
	});
	const front = await startFront(mock.url, log);
	const gateway = await startBenchGateway([
		{
			name: "openai",
			provider: "openai",
			baseUrl: `${front.url}/openai/v1`,
			limits: { requestsPerMinute: KEY_RPM, tokensPerMinute: 100_000_000, maxConcurrent: 64 },
		},
	]);
	console.log(`batches: gateway ${gateway.origin}, provider ${front.url}`);
	try {
		// Warm up, then the interactive traffic alone: its unloaded p95.
		await interactive(gateway.origin, 5_000);
		const cpu = cpuMeter(gateway.pid);
		const unloadedFromMs = performance.now();
		const unloaded = await interactive(gateway.origin, BASELINE_MS);
		const unloadedToMs = performance.now();
		const unloadedCpu = cpu(unloaded.shots.length);

		const openai = new OpenAI({
			apiKey: BENCH_GATEWAY_KEY,
			baseURL: `${gateway.origin}/openai/v1`,
			maxRetries: 0,
		});
		const file = await openai.files.create({
			file: await toFile(Buffer.from(batchFile()), "bench.jsonl"),
			purpose: "batch",
		});
		const startedMs = performance.now();
		const batch = await openai.batches.create({
			input_file_id: file.id,
			endpoint: "/v1/chat/completions",
			completion_window: "24h",
		});
		cpu(0);
		const besideFromMs = performance.now();
		const linesBefore = log.batchSentAtMs.length;
		const beside = await interactive(gateway.origin, BESIDE_BATCH_MS);
		const besideToMs = performance.now();
		const besideLines = log.batchSentAtMs.length - linesBefore;
		const besideCpu = cpu(beside.shots.length + besideLines);
		// The provider's own share of the interactive latency, in each phase.
		const providerP95 = (fromMs: number, toMs: number) =>
			summarize(log.interactive.filter((r) => r.atMs >= fromMs && r.atMs < toMs).map((r) => r.ms))
				.p95;

		// The batch alone: its share of the key's limit, measured at the provider.
		const windowStart = performance.now() + 3_000;
		await new Promise((wake) => setTimeout(wake, 3_000));
		cpu(0);
		await new Promise((wake) => setTimeout(wake, ALONE_WINDOW_MS));
		const windowEnd = performance.now();
		const sentInWindow = log.batchSentAtMs.filter((at) => at >= windowStart && at < windowEnd);
		const aloneCpu = cpu(sentInWindow.length);
		const aloneUse = sentInWindow.length / ((ALONE_WINDOW_MS / 1000) * (KEY_RPM / 60));

		let done = await openai.batches.retrieve(batch.id);
		while (!["completed", "failed", "expired", "cancelled"].includes(done.status)) {
			if (performance.now() - startedMs > DONE_TIMEOUT_MS)
				throw new Error(`batch not done: ${JSON.stringify(done)}`);
			await new Promise((wake) => setTimeout(wake, 1000));
			done = await openai.batches.retrieve(batch.id);
		}
		const batchSeconds = (performance.now() - startedMs) / 1000;
		const read = async (id: string | null | undefined) =>
			id
				? (await (await openai.files.content(id)).text())
						.trim()
						.split("\n")
						.map(
							(line) => JSON.parse(line) as { custom_id: string; error: { code: string } | null },
						)
				: [];
		const output = await read(done.output_file_id);
		const errors = await read(done.error_file_id);
		const ids = [...output, ...errors].map((line) => line.custom_id);
		const exactlyOnce = ids.length === LINES && new Set(ids).size === LINES;
		const deadLines = errors.filter((line) => line.error?.code === "max_attempts_exceeded").length;
		const attempts = [...log.failingAttempts.values()];
		const everyAttempt = attempts.length === ALWAYS_FAIL && attempts.every((n) => n === ATTEMPTS);
		const provider429 = log.byStatus[429] ?? 0;
		const baseP95 = p95Of(unloaded.shots);
		const besideP95 = p95Of(beside.shots);
		const besideFailed = beside.shots.filter((shot) => shot.status !== 200).length;

		const rows: Row[] = [
			{ label: "batch lines / status", value: `${LINES} / ${done.status}` },
			{
				label: "every custom_id exactly once in output or error file",
				value: `${ids.length} lines, ${new Set(ids).size} distinct`,
				target: `${LINES}`,
				met: exactlyOnce,
			},
			{
				label: "always-failing lines in the error file after every attempt",
				value: `${deadLines} of ${ALWAYS_FAIL}; attempts each ${[...new Set(attempts)].join(",")}`,
				target: `${ALWAYS_FAIL}, ${ATTEMPTS} attempts`,
				met: deadLines === ALWAYS_FAIL && everyAttempt,
			},
			{ label: "provider 429s", value: String(provider429), target: "0", met: provider429 === 0 },
			{ label: "interactive high p95 alone", value: milliseconds(baseP95) },
			{
				label: "interactive high p95 beside the batch",
				value: `${milliseconds(besideP95)} (${percent(besideP95 / baseP95 - 1)})`,
				target: `≤ +${percent(P95_TOLERANCE, 0)}`,
				met: besideP95 <= baseP95 * (1 + P95_TOLERANCE),
			},
			{
				label: "interactive high: p95 at the provider (front + mock), alone / beside",
				value: `${milliseconds(providerP95(unloadedFromMs, unloadedToMs))} / ${milliseconds(providerP95(besideFromMs, besideToMs))}`,
			},
			{
				label: "interactive high: p95 of time in the pool's queue, alone / beside",
				value: `${milliseconds(queueP95Of(unloaded.shots))} / ${milliseconds(queueP95Of(beside.shots))}`,
			},
			{
				label: "gateway process CPU, share of one core: interactive alone / beside / batch alone",
				value: [unloadedCpu, besideCpu, aloneCpu]
					.map((phase) => percent(phase.share, 0))
					.join(" / "),
			},
			{
				label:
					"gateway CPU ms per interactive request alone, per request or line beside, per line alone",
				value: [unloadedCpu, besideCpu, aloneCpu]
					.map((phase) => phase.msEach.toFixed(1))
					.join(" / "),
			},
			{
				label: "interactive requests not answered 200 beside the batch",
				value: String(besideFailed),
				target: "0",
				met: besideFailed === 0,
			},
			{
				label: "batch alone: share of the key's limit",
				value: percent(aloneUse),
				target: `≥ ${percent(MIN_ALONE_USE, 0)}`,
				met: aloneUse >= MIN_ALONE_USE,
			},
			{ label: "batch duration", value: `${batchSeconds.toFixed(0)} s` },
		];
		const setting = `${KEY_RPM} RPM, provider ${PROVIDER_LATENCY_MS} ms, interactive ${percent(INTERACTIVE_SHARE, 0)}`;
		return finish("batches", `batches: ${LINES} lines, ${setting}`, rows, {
			keyRequestsPerMinute: KEY_RPM,
			providerLatencyMs: PROVIDER_LATENCY_MS,
			interactiveRatePerSecond: INTERACTIVE_RATE,
			gatewayCpu: { unloaded: unloadedCpu, beside: besideCpu, alone: aloneCpu },
			providerByStatus: log.byStatus,
			requestCounts: done.request_counts,
			unloaded: summarize(unloaded.shots.map((shot) => shot.endMs - shot.sentMs)),
			besideBatch: summarize(beside.shots.map((shot) => shot.endMs - shot.sentMs)),
			besideFailures: beside.shots
				.filter((shot) => shot.status !== 200)
				.slice(0, 5)
				.map((shot) => ({ status: shot.status, cutOff: shot.cutOff, body: shot.errorBody })),
		});
	} finally {
		await gateway.stop();
		await front.close();
		await mock.close();
	}
}

export const batches: Scenario = {
	name: "batches",
	summary: "a 2,000-line batch on a key's spare capacity beside interactive traffic",
	run,
};
