// The queue consumer: each delivered batch line goes through its pool as background work (spare
// capacity only), is sent once, and has its result recorded once in its Batch object. Lines the
// queue gave up on arrive from the dead-letter queue and are recorded failed with their last error.
import { loadConfig, type PoolConfig } from "../config.ts";
import type { Batch } from "../durable/batch.ts";
import type { AcquireRequest, AttemptReport } from "../durable/pool.ts";
import { providerFor } from "../providers/index.ts";
import type { LineMessage } from "./batch-queue.ts";
import { estimateCost, parseJson } from "./caller-request.ts";

export type { LineMessage };

import { PoolClient } from "./pool-client.ts";
import { sendOnce } from "./send.ts";
import { scrubSecrets, upstreamRequestHeaders, upstreamUrl } from "./upstream.ts";

/** The queue whose messages are lines the main queue gave up on (wrangler.toml). */
const isDeadLetterQueue = (name: string) => name.includes("dead-lines");

/** A line never waits in the pool's queue: one the pool cannot admit at once is refused. */
const BACKGROUND_MAX_WAIT_MS = 0;
/** A deferred line comes back after the pool's retry-after, doubled per deferral, within these. */
const DEFER_SECONDS = { min: 1, max: 8 };
/** A failed line is tried again after 2, 4, 8… seconds (by its attempts), at most this long. */
const MAX_RETRY_DELAY_SECONDS = 120;
/** Sends of a line before it is dead-lettered: wrangler.toml's max_retries + 1. */
export const MAX_LINE_ATTEMPTS = 5;

/** A caller that never leaves: a line is nobody's open connection. */
const staying = new AbortController().signal;
/** A caller already gone: after a failed send the line does not wait for the pool's backoff. */
const leaving = AbortSignal.abort();

export interface ConsumerOptions {
	upstreamFetch?: typeof fetch;
}

export function createBatchConsumer(options: ConsumerOptions = {}) {
	const upstreamFetch: typeof fetch =
		options.upstreamFetch ?? ((input, init) => fetch(input, init));
	return async function consumeBatchLines(
		batch: MessageBatch<LineMessage>,
		env: Env,
	): Promise<void> {
		if (isDeadLetterQueue(batch.queue)) {
			await Promise.all(
				batch.messages.map(async (message) => {
					await env.BATCH.getByName(message.body.batchId).deadLine(message.body.customId);
					message.ack();
				}),
			);
			return;
		}
		// Lines ask their pools one after another, and once a pool refuses, the delivery's other
		// lines for it wait without asking: a backlog costs the pool one refusal per delivery.
		const refusedByPool = new Map<string, number>();
		const sending: Promise<void>[] = [];
		for (const message of batch.messages) {
			const send = await admitLine(message, env, refusedByPool);
			if (send) sending.push(send(upstreamFetch));
		}
		await Promise.all(sending);
	};
}

/** The delay before a failed line's next try: doubling with its attempts, or the provider's wait. */
export function retryDelaySeconds(attempts: number, retryAfterMs = 0): number {
	const doubling = 2 ** Math.max(1, attempts);
	return Math.min(MAX_RETRY_DELAY_SECONDS, Math.max(doubling, Math.ceil(retryAfterMs / 1000)));
}

type Send = (upstreamFetch: typeof fetch) => Promise<void>;

/**
 * Takes a delivered line as far as its pool's admission: acked when it needs nothing more, sent back
 * to wait when its pool has no spare capacity, else what sends it and records its result.
 */
async function admitLine(
	message: Message<LineMessage>,
	env: Env,
	refusedByPool: Map<string, number>,
): Promise<Send | undefined> {
	const line = message.body;
	const refusedMs = refusedByPool.get(line.pool);
	if (refusedMs !== undefined) {
		await deferLine(env, message, refusedMs);
		return undefined;
	}
	const batch = env.BATCH.getByName(line.batchId);
	if ((await batch.lineGate(line.customId)) !== "run") {
		message.ack();
		return undefined;
	}
	// This delivery's attempt, counting the failed sends of earlier messages of the line.
	const attempt = (line.failedAttempts ?? 0) + message.attempts;
	const failed = async (why: string, retryAfterMs?: number) => {
		await batch.noteFailure(line.customId, why);
		if (attempt < MAX_LINE_ATTEMPTS) {
			message.retry({ delaySeconds: retryDelaySeconds(attempt, retryAfterMs) });
			return;
		}
		await env.BATCH_DEAD_LINES.send(line, { contentType: "json" });
		message.ack();
	};

	const loaded = loadConfig(env.TOLLBOOTH_CONFIG);
	const pool = loaded.ok ? loaded.config.pools.find((p) => p.name === line.pool) : undefined;
	const apiKey = pool && (env as unknown as Record<string, unknown>)[pool.apiKeySecret];
	if (!pool || typeof apiKey !== "string" || apiKey === "") {
		await failed(`Pool "${line.pool}" is not configured with a provider key.`);
		return undefined;
	}
	const provider = providerFor(pool.provider);
	const cost = estimateCost(provider, pool, line.path, line.body);
	const ask: AcquireRequest = {
		ticketId: `${line.batchId}/${line.customId}/${crypto.randomUUID()}`,
		tenant: line.tenant,
		model: cost.model,
		priority: "low",
		tokens: cost.tokens,
		maxWaitMs: BACKGROUND_MAX_WAIT_MS,
		background: true,
	};
	const client = new PoolClient(env.POOL, pool.name);
	const admission = await client.acquire(ask, staying);
	if (admission.kind !== "admitted") {
		if (admission.kind === "rejected" && admission.reason === "too_large") {
			await batch.recordLine(line.customId, {
				kind: "failed",
				code: "too_large",
				message: admission.message,
			});
			message.ack();
			return undefined;
		}
		const retryAfterMs = "retryAfterMs" in admission ? admission.retryAfterMs : 1000;
		refusedByPool.set(pool.name, retryAfterMs);
		await deferLine(env, message, retryAfterMs);
		return undefined;
	}
	return (upstreamFetch) =>
		sendLine({ message, batch, pool, apiKey, ask, client, failed }, upstreamFetch);
}

interface Admitted {
	message: Message<LineMessage>;
	batch: DurableObjectStub<Batch>;
	pool: PoolConfig;
	apiKey: string;
	ask: AcquireRequest;
	client: PoolClient;
	failed(why: string, retryAfterMs?: number): Promise<void>;
}

/** Sends an admitted line once and records its result, or has it tried again later. */
async function sendLine(admitted: Admitted, upstreamFetch: typeof fetch): Promise<void> {
	const { message, batch, pool, apiKey, ask, client, failed } = admitted;
	const line = message.body;
	const provider = providerFor(pool.provider);
	// Issue 11 (budgets): a line is charged to its tenant here, when it runs.
	const sent = await sendOnce(
		upstreamUrl(pool.baseUrl, line.path, ""),
		{
			method: "POST",
			headers: upstreamRequestHeaders(lineHeaders(), provider, apiKey, pool),
			body: JSON.stringify(line.body),
		},
		pool,
		provider,
		staying,
		upstreamFetch,
	);
	if (sent.kind === "answered") {
		let text: string;
		try {
			text = await sent.response.text();
		} catch {
			await client.release(ask.ticketId, undefined);
			return failed("The provider's answer broke off.");
		} finally {
			sent.deadline.disarm();
		}
		const body = parseJson(text);
		const used = provider.usageFromJson(line.path, body);
		await client.release(
			ask.ticketId,
			used && used.inputTokens + used.outputTokens,
			true,
			sent.limits,
		);
		const requestId = requestIdOf(sent.response.headers);
		await batch.recordLine(line.customId, {
			kind: "answered",
			statusCode: sent.response.status,
			requestId,
			body,
		});
		return message.ack();
	}
	if (sent.kind === "caller_gone") return failed("The send was cut off.");

	if (sent.kind === "refused" && sent.status === 429) {
		// The Pool judges a 429 as any other: the whole pool pauses. The line leaves at once and
		// comes back through the queue instead of waiting in the pool.
		const report: AttemptReport = {
			status: 429,
			reported: sent.limits,
			retryAfterMs: sent.limits.retryAfterMs,
		};
		const answer = await client.attemptEnded(ask.ticketId, report, ask, leaving);
		if (answer.kind === "admitted") await client.release(ask.ticketId, 0);
		return failed("The provider answered 429.", sent.limits.retryAfterMs);
	}
	// Other failures end the lease without counting against the provider's health: a batch's bad
	// lines must not open the circuit breaker on interactive traffic (measured: they did). Its
	// retries are the queue's, bounded by the line's attempts.
	await client.release(
		ask.ticketId,
		undefined,
		false,
		sent.kind === "refused" ? sent.limits : undefined,
	);
	if (sent.kind === "no_answer") return failed(sent.error.message);
	if (sent.status >= 500) {
		return failed(`The provider answered ${sent.status}.`, sent.limits.retryAfterMs);
	}
	// A request the provider refuses (400, 404…) would be refused again: its answer is the result.
	await batch.recordLine(line.customId, {
		kind: "answered",
		statusCode: sent.status,
		requestId: requestIdOf(sent.headers),
		body: parseJson(scrubSecrets(sent.text, apiKey)) ?? { error: { message: "unreadable answer" } },
	});
	message.ack();
}

/**
 * Sends the line back to wait for spare capacity, as a new message: waiting spends none of its
 * attempts (the failed ones travel with it). The wait doubles with each deferral (1 to 8 s, jittered), so
 * a backlog of thousands of lines asks a few times a second, not all at once.
 */
async function deferLine(env: Env, message: Message<LineMessage>, retryAfterMs: number) {
	const line = message.body;
	const deferrals = line.deferrals ?? 0;
	const waitSeconds = Math.max(1, retryAfterMs / 1000) * 2 ** deferrals;
	const jittered = Math.ceil(waitSeconds * (0.5 + Math.random() / 2));
	const delaySeconds = Math.min(DEFER_SECONDS.max, Math.max(DEFER_SECONDS.min, jittered));
	const again: LineMessage = {
		...line,
		failedAttempts: (line.failedAttempts ?? 0) + message.attempts - 1,
		deferrals: deferrals + 1,
	};
	await env.BATCH_LINES.send(again, { contentType: "json", delaySeconds });
	message.ack();
}
function lineHeaders(): Headers {
	return new Headers({ "content-type": "application/json" });
}

function requestIdOf(headers: Headers): string {
	return (
		headers.get("x-request-id") ??
		headers.get("request-id") ??
		`req_${crypto.randomUUID().replaceAll("-", "")}`
	);
}
