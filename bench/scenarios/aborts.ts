// Callers who leave at random moments against a slow provider that counts its own in-flight requests:
// the provider must never see more than maxConcurrent, nor a request whose caller had already gone.
import { EventEmitter } from "node:events";
import { createServer, request as httpRequest, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { BENCH_GATEWAY_KEY, readAdmin, startBenchGateway } from "../lib/bench-gateway.ts";
import { seededRandom } from "../lib/random.ts";
import { finish, milliseconds, type Row } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";
import { countBy, summarize } from "../lib/stats.ts";

const MAX_CONCURRENT = 8;
/** ABORTS_REQUESTS / ABORTS_CLIENTS / ABORTS_SEED override these for shorter or other runs. */
const REQUESTS = Number(process.env.ABORTS_REQUESTS ?? 2000);
const CLIENTS = Number(process.env.ABORTS_CLIENTS ?? 32);
const SEED = Number(process.env.ABORTS_SEED ?? 9);
/** Slack for the caller's close to cross loopback and the gateway before it counts as "gone". */
const GONE_GRACE_MS = 50;
/** An upstream still open this long after its caller left was not closed promptly. */
const PROMPT_CLOSE_MS = 250;
const CALLER_TIMEOUT_MS = 60_000;
const DRAIN_TIMEOUT_MS = 30_000;

/**
 * How a caller behaves: reads everything; leaves at a random time (mostly while queued or being
 * admitted); leaves once the provider has its request (waiting for the first byte, or mid-body);
 * or leaves once bytes flow (mid-stream).
 */
type Leaving = "stays" | "timer" | "after provider received" | "after first byte";

interface Plan {
	id: number;
	stream: boolean;
	leaving: Leaving;
	/** Ms after sending, after the provider received the request, or after the first byte. */
	leaveAfterMs: number;
	/** The provider's answer: time to its headers, then the body's pace. */
	firstByteMs: number;
	chunkGapMs: number;
	chunks: number;
}

function planFor(id: number): Plan {
	const random = seededRandom(SEED * 1_000_003 + id);
	const stream = random() < 0.5;
	const roll = random();
	const leaving: Leaving =
		roll < 0.15
			? "stays"
			: roll < 0.5
				? "timer"
				: roll < 0.8
					? "after provider received"
					: "after first byte";
	const leaveWithinMs = {
		stays: 0,
		timer: 4000,
		"after provider received": 2500,
		"after first byte": 600,
	};
	return {
		id,
		stream,
		leaving,
		leaveAfterMs: random() * leaveWithinMs[leaving],
		firstByteMs: 200 + random() * 1800,
		chunkGapMs: 50 + random() * 150,
		chunks: stream ? 8 : 2,
	};
}

interface ProviderRecord {
	id: number;
	receivedMs: number;
	endedMs?: number;
	/** The provider wrote its whole answer (false: the gateway closed the connection first). */
	completed?: boolean;
}

/** A loopback OpenAI-like provider, slow on purpose, that watches its own concurrency. */
function startProvider() {
	const records: ProviderRecord[] = [];
	/** Emits a request's id as the provider gets it, for callers who leave only after that. */
	const received = new EventEmitter();
	received.setMaxListeners(0);
	let inFlight = 0;
	let maxInFlight = 0;
	let maxInFlightAtMs = 0;
	const server = createServer(async (req, res) => {
		inFlight += 1;
		if (inFlight > maxInFlight) {
			maxInFlight = inFlight;
			maxInFlightAtMs = performance.now();
		}
		const record: ProviderRecord = { id: -1, receivedMs: performance.now() };
		records.push(record);
		const timers: ReturnType<typeof setTimeout>[] = [];
		let ended = false;
		/** The earliest sign the request is over: its answer written, or its connection closing. */
		const end = () => {
			if (ended) return;
			ended = true;
			inFlight -= 1;
			record.endedMs = performance.now();
			record.completed = res.writableFinished;
			for (const timer of timers) clearTimeout(timer);
		};
		res.once("close", end);
		// Node emits "close" a tick after the peer's FIN; "end" on the socket is the FIN itself.
		req.socket.once("end", end);
		const body = await readAll(req).catch(() => "");
		const parsed = JSON.parse(body || "{}") as { user?: string };
		record.id = Number(/^probe-(\d+)$/.exec(parsed.user ?? "")?.[1] ?? -1);
		received.emit(String(record.id));
		const plan = planFor(record.id);
		const usage = {
			prompt_tokens: 10,
			completion_tokens: plan.chunks,
			total_tokens: 10 + plan.chunks,
		};
		const parts: string[] = plan.stream
			? [
					...Array.from(
						{ length: plan.chunks },
						(_, index) =>
							`data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: `w${index} ` } }] })}\n\n`,
					),
					`data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [], usage })}\n\n`,
					"data: [DONE]\n\n",
				]
			: [
					'{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",',
					`"content":"hello"},"finish_reason":"stop"}],"usage":${JSON.stringify(usage)}}`,
				];
		timers.push(
			setTimeout(() => {
				res.writeHead(200, {
					"content-type": plan.stream ? "text/event-stream" : "application/json",
				});
				parts.forEach((part, index) => {
					timers.push(
						setTimeout(() => {
							if (res.destroyed) return;
							if (index === parts.length - 1) res.end(part);
							else res.write(part);
						}, index * plan.chunkGapMs),
					);
				});
			}, plan.firstByteMs),
		);
	});
	return new Promise<{
		url: string;
		records: ProviderRecord[];
		received: EventEmitter;
		inFlight: () => number;
		max: () => { inFlight: number; atMs: number };
		close: () => Promise<void>;
	}>((ready) => {
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address() as AddressInfo;
			ready({
				url: `http://127.0.0.1:${port}`,
				records,
				received,
				inFlight: () => inFlight,
				max: () => ({ inFlight: maxInFlight, atMs: maxInFlightAtMs }),
				close: () =>
					new Promise((done) => {
						server.closeAllConnections();
						server.close(() => done());
					}),
			});
		});
	});
}

function readAll(req: IncomingMessage): Promise<string> {
	return new Promise((done, failed) => {
		const chunks: Buffer[] = [];
		req.on("data", (chunk: Buffer) => chunks.push(chunk));
		req.on("end", () => done(Buffer.concat(chunks).toString("utf8")));
		req.on("error", failed);
	});
}

interface CallerRecord {
	id: number;
	stream: boolean;
	leaving: Leaving;
	sentMs: number;
	/** When the caller closed its connection, if it left. */
	abortMs?: number;
	status?: number;
	firstByteMs?: number;
	endMs?: number;
	/** How the call ended for the caller. */
	end: "answered" | "left" | "error";
}

/** One caller: sends, and closes its connection when its plan says so. */
function call(origin: string, plan: Plan, received: EventEmitter): Promise<CallerRecord> {
	const body = JSON.stringify({
		model: "gpt-4o-mini",
		user: `probe-${plan.id}`,
		messages: [{ role: "user", content: `probe ${plan.id}` }],
		max_tokens: 16,
		stream: plan.stream,
	});
	return new Promise((done) => {
		const record: CallerRecord = {
			id: plan.id,
			stream: plan.stream,
			leaving: plan.leaving,
			sentMs: performance.now(),
			end: "error",
		};
		let finished = false;
		const finish = (end: CallerRecord["end"]) => {
			if (finished) return;
			finished = true;
			clearTimeout(leaveTimer);
			clearTimeout(giveUp);
			received.off(String(plan.id), onReceived);
			record.end = end;
			record.endMs = performance.now();
			done(record);
		};
		const leave = () => {
			if (finished) return;
			record.abortMs = performance.now();
			outgoing.destroy();
			finish("left");
		};
		const outgoing = httpRequest(
			`${origin}/openai/v1/chat/completions`,
			{
				method: "POST",
				agent: false,
				headers: {
					authorization: `Bearer ${BENCH_GATEWAY_KEY}`,
					"content-type": "application/json",
					"x-max-wait-ms": String(CALLER_TIMEOUT_MS),
				},
			},
			(incoming) => {
				record.status = incoming.statusCode;
				incoming.once("data", () => {
					record.firstByteMs = performance.now();
					if (plan.leaving === "after first byte") {
						leaveTimer = setTimeout(leave, plan.leaveAfterMs);
					}
				});
				incoming.on("data", () => {});
				incoming.on("end", () => finish("answered"));
				incoming.on("error", () => finish("error"));
			},
		);
		outgoing.on("error", () => finish("error"));
		let leaveTimer = plan.leaving === "timer" ? setTimeout(leave, plan.leaveAfterMs) : undefined;
		const onReceived = () => {
			leaveTimer = setTimeout(leave, plan.leaveAfterMs);
		};
		if (plan.leaving === "after provider received") received.once(String(plan.id), onReceived);
		const giveUp = setTimeout(leave, CALLER_TIMEOUT_MS);
		outgoing.end(body);
	});
}

async function runCallers(
	origin: string,
	received: EventEmitter,
	onEach: () => void,
): Promise<CallerRecord[]> {
	const records: CallerRecord[] = [];
	let next = 0;
	const worker = async () => {
		while (next < REQUESTS) {
			const plan = planFor(next);
			next += 1;
			records.push(await call(origin, plan, received));
			onEach();
		}
	};
	await Promise.all(Array.from({ length: CLIENTS }, worker));
	return records.sort((a, b) => a.id - b.id);
}

async function run(): Promise<boolean> {
	const provider = await startProvider();
	const gateway = await startBenchGateway([
		{
			name: "openai",
			provider: "openai",
			baseUrl: `${provider.url}/v1`,
			limits: { requestsPerMinute: 1e6, tokensPerMinute: 1e9, maxConcurrent: MAX_CONCURRENT },
			maxWaitMs: CALLER_TIMEOUT_MS,
			maxQueueLength: 2 * CLIENTS,
		},
	]).catch(async (error: unknown) => {
		await provider.close();
		throw error;
	});
	console.log(
		`aborts: ${REQUESTS} requests from ${CLIENTS} callers who leave at random, maxConcurrent ${MAX_CONCURRENT} (gateway ${gateway.origin}, provider ${provider.url})`,
	);
	const startedMs = performance.now();
	let callers: CallerRecord[];
	let poolAtEnd: { inFlight?: number; queued?: number } = {};
	try {
		let done = 0;
		const progress = setInterval(() => {
			const seconds = Math.round((performance.now() - startedMs) / 1000);
			console.log(
				`  t=${seconds}s callers done ${done}, provider received ${provider.records.length}, in flight ${provider.inFlight()}, max ${provider.max().inFlight}`,
			);
		}, 10_000);
		callers = await runCallers(gateway.origin, provider.received, () => {
			done += 1;
		}).finally(() => clearInterval(progress));
		// Whatever the gateway still sends for callers who left has this long to show up and end.
		const drainUntil = performance.now() + DRAIN_TIMEOUT_MS;
		while (provider.inFlight() > 0 && performance.now() < drainUntil) {
			await new Promise((wait) => setTimeout(wait, 250));
		}
		await new Promise((wait) => setTimeout(wait, 2_000));
		const admin = (await readAdmin(gateway, "pools/openai")) as {
			status: { inFlight?: number; queued?: number };
		};
		poolAtEnd = admin.status;
	} finally {
		await gateway.stop();
		await provider.close();
	}

	const byId = new Map(callers.map((caller) => [caller.id, caller]));
	const received = provider.records.filter((record) => record.id >= 0);
	const sends = received.map((record) => ({ record, caller: byId.get(record.id) }));
	/** Sent to the provider after its caller had left: how long after. */
	const sentAfterLeaving = sends.flatMap(({ record, caller }) =>
		caller?.abortMs !== undefined && record.receivedMs > caller.abortMs + GONE_GRACE_MS
			? [record.receivedMs - caller.abortMs]
			: [],
	);
	/** Upstream requests open when their caller left: how long they stayed open after it. */
	const openAfterLeaving = (stream: boolean) =>
		sends.flatMap(({ record, caller }) =>
			caller?.abortMs !== undefined &&
			caller.stream === stream &&
			record.receivedMs <= caller.abortMs + GONE_GRACE_MS &&
			(record.endedMs ?? Number.POSITIVE_INFINITY) > caller.abortMs
				? [
						{
							lingerMs: (record.endedMs ?? performance.now()) - caller.abortMs,
							completed: record.completed === true,
						},
					]
				: [],
		);
	const lingering = { nonStreamed: openAfterLeaving(false), streamed: openAfterLeaving(true) };
	const notPrompt = (list: { lingerMs: number }[]) =>
		list.filter((item) => item.lingerMs > PROMPT_CLOSE_MS).length;
	const completedAnyway = (list: { completed: boolean }[]) =>
		list.filter((item) => item.completed).length;
	const left = callers.filter((caller) => caller.abortMs !== undefined);
	const stillOpen = provider.records.filter((record) => record.endedMs === undefined).length;
	const sentTwice = Object.values(countBy(received, (record) => String(record.id))).filter(
		(count) => count > 1,
	).length;
	const max = provider.max();
	const lagSummary = summarize(sentAfterLeaving);
	const lingerNon = summarize(lingering.nonStreamed.map((item) => item.lingerMs));
	const lingerStream = summarize(lingering.streamed.map((item) => item.lingerMs));

	const rows: Row[] = [
		{ label: "callers", value: `${callers.length} (${left.length} left early)` },
		{ label: "caller ends", value: JSON.stringify(countBy(callers, (caller) => caller.end)) },
		{
			label: "caller statuses",
			value: JSON.stringify(countBy(callers, (caller) => String(caller.status ?? "none"))),
		},
		{ label: "requests the provider received", value: String(provider.records.length) },
		{ label: "  for the same caller twice or more", value: String(sentTwice) },
		{
			label: "provider max in flight",
			value: `${max.inFlight} (at ${((max.atMs - startedMs) / 1000).toFixed(1)} s)`,
			target: `≤ ${MAX_CONCURRENT}`,
			met: max.inFlight <= MAX_CONCURRENT,
		},
		{
			label: `received after the caller left (>${GONE_GRACE_MS} ms)`,
			value: String(sentAfterLeaving.length),
			target: "0",
			met: sentAfterLeaving.length === 0,
		},
		{
			label: "  how long after: p50 / max",
			value: `${milliseconds(lagSummary.p50)} / ${milliseconds(lagSummary.max)}`,
		},
		{
			label: "non-streamed upstreams open when the caller left",
			value: String(lingering.nonStreamed.length),
		},
		{
			label: `  still open ${PROMPT_CLOSE_MS} ms later`,
			value: String(notPrompt(lingering.nonStreamed)),
			target: "0",
			met: notPrompt(lingering.nonStreamed) === 0,
		},
		{ label: "  answered in full anyway", value: String(completedAnyway(lingering.nonStreamed)) },
		{
			label: "  open after leaving: p50 / max",
			value: `${milliseconds(lingerNon.p50)} / ${milliseconds(lingerNon.max)}`,
		},
		{
			label: "streamed upstreams open when the caller left",
			value: String(lingering.streamed.length),
		},
		{
			label: `  still open ${PROMPT_CLOSE_MS} ms later`,
			value: String(notPrompt(lingering.streamed)),
			target: "0",
			met: notPrompt(lingering.streamed) === 0,
		},
		{ label: "  answered in full anyway", value: String(completedAnyway(lingering.streamed)) },
		{
			label: "  open after leaving: p50 / max",
			value: `${milliseconds(lingerStream.p50)} / ${milliseconds(lingerStream.max)}`,
		},
		{
			label: "provider connections open at the end",
			value: String(stillOpen),
			target: "0",
			met: stillOpen === 0,
		},
		{
			label: "pool inFlight / queued at the end",
			value: `${poolAtEnd.inFlight} / ${poolAtEnd.queued}`,
			target: "0 / 0",
			met: poolAtEnd.inFlight === 0 && poolAtEnd.queued === 0,
		},
	];
	const title = `aborts — ${REQUESTS} callers leaving at random, maxConcurrent ${MAX_CONCURRENT}`;
	return finish("aborts", title, rows, {
		setup: {
			requests: REQUESTS,
			clients: CLIENTS,
			seed: SEED,
			maxConcurrent: MAX_CONCURRENT,
			goneGraceMs: GONE_GRACE_MS,
			promptCloseMs: PROMPT_CLOSE_MS,
			provider: "first byte 200–2000 ms, then 2 (JSON) or 10 (SSE) chunks 50–200 ms apart",
			callers:
				"15% stay; 35% leave 0–4000 ms after sending; 30% leave 0–2500 ms after the provider received the request; 20% leave 0–600 ms after their first byte",
		},
		providerMaxInFlight: max.inFlight,
		receivedAfterCallerLeft: { count: sentAfterLeaving.length, lagMs: lagSummary },
		openAfterCallerLeft: {
			nonStreamed: {
				count: lingering.nonStreamed.length,
				notPrompt: notPrompt(lingering.nonStreamed),
				completedAnyway: completedAnyway(lingering.nonStreamed),
				lingerMs: lingerNon,
			},
			streamed: {
				count: lingering.streamed.length,
				notPrompt: notPrompt(lingering.streamed),
				completedAnyway: completedAnyway(lingering.streamed),
				lingerMs: lingerStream,
			},
		},
		poolAtEnd: { inFlight: poolAtEnd.inFlight, queued: poolAtEnd.queued },
		callers: callers.map((caller) => ({
			...caller,
			sentMs: Math.round(caller.sentMs - startedMs),
			abortMs: caller.abortMs === undefined ? undefined : Math.round(caller.abortMs - startedMs),
			firstByteMs:
				caller.firstByteMs === undefined ? undefined : Math.round(caller.firstByteMs - startedMs),
			endMs: caller.endMs === undefined ? undefined : Math.round(caller.endMs - startedMs),
		})),
		provider: provider.records.map((record) => ({
			id: record.id,
			receivedMs: Math.round(record.receivedMs - startedMs),
			endedMs: record.endedMs === undefined ? undefined : Math.round(record.endedMs - startedMs),
			completed: record.completed,
		})),
	});
}

export const aborts: Scenario = {
	name: "aborts",
	summary: "callers who leave at random: provider in-flight ≤ maxConcurrent, nothing sent for them",
	run,
};
