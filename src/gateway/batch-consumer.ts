// The queue consumer: a delivery of batch lines is held while its lines go through their pool one
// by one as background work (spare capacity only), each sent once, charged to its tenant and its
// result recorded once in its Batch object, with one Batch call per step of the delivery. Lines
// the queue gave up on arrive from the dead-letter queue and are recorded failed with their last error.
import { type Config, loadConfig, type PoolConfig } from "../config.ts";
import type { Batch, LineGate, LineResult } from "../durable/batch.ts";
import type { AcquireRequest } from "../durable/pool.ts";
import { providerFor } from "../providers/index.ts";
import type { Provider } from "../providers/types.ts";
import { AnalyticsEngineSink } from "../usage/record.ts";
import { LineLedger, tenantPolicy } from "./batch-line-budget.ts";
import { type LineEnd, requestIdOf, sendAdmittedLine, staying } from "./batch-line-send.ts";
import { type LineMessage, sendLineMessages } from "./batch-queue.ts";
import { endUserOf } from "./budget-gate.ts";
import { estimateCost } from "./caller-request.ts";
import { PoolClient } from "./pool-client.ts";
import { UsageRecording } from "./usage-recording.ts";

export type { LineMessage };

/** The queue whose messages are lines the main queue gave up on (wrangler.toml). */
const isDeadLetterQueue = (name: string) => name.includes("dead-lines");

/**
 * A delivery's lines wait for spare capacity in the consumer, asking their pool again when it says
 * room comes back (within these bounds), instead of going back into the queue: a backlog of
 * thousands costs the pool one refused ask per wait, and the queue nothing.
 */
const ASK_AGAIN_MS = { min: 5, max: 1000 };
/** A delivery is held at most this long; lines still waiting then go back into the queue. */
const MAX_HOLD_MS = 60_000;
/** How often a held delivery records its finished lines and re-checks its batch (cancel). */
const SYNC_MS = 1000;
/** A line sent back to the queue comes back after about this long. */
const DEFER_SECONDS = { min: 1, max: 8 };
/** A failed line is tried again after 2, 4, 8… seconds (by its attempts), at most this long. */
const MAX_RETRY_DELAY_SECONDS = 120;
/** Sends of a line before it is dead-lettered: wrangler.toml's max_retries + 1. */
export const MAX_LINE_ATTEMPTS = 5;

export interface ConsumerOptions {
	upstreamFetch?: typeof fetch;
	/** How long a delivery is held for spare capacity (default MAX_HOLD_MS). */
	maxHoldMs?: number;
}

export function createBatchConsumer(options: ConsumerOptions = {}) {
	const upstreamFetch: typeof fetch =
		options.upstreamFetch ?? ((input, init) => fetch(input, init));
	const maxHoldMs = options.maxHoldMs ?? MAX_HOLD_MS;
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
		// A delivery normally holds lines of one batch; each batch's lines are paced on their own.
		const byBatch = new Map<string, Message<LineMessage>[]>();
		for (const message of batch.messages) {
			const lines = byBatch.get(message.body.batchId) ?? [];
			lines.push(message);
			byBatch.set(message.body.batchId, lines);
		}
		await Promise.all(
			[...byBatch.values()].map((messages) =>
				new Delivery(env, messages, upstreamFetch, maxHoldMs).run(),
			),
		);
	};
}

/** The delay before a failed line's next try: doubling with its attempts, or the provider's wait. */
export function retryDelaySeconds(attempts: number, retryAfterMs = 0): number {
	const doubling = 2 ** Math.max(1, attempts);
	return Math.min(MAX_RETRY_DELAY_SECONDS, Math.max(doubling, Math.ceil(retryAfterMs / 1000)));
}

/** What a delivery's lines share: their pool, its provider and key, their tenant's ledger. */
interface Route {
	config: Config;
	pool: PoolConfig;
	provider: Provider;
	apiKey: string;
	client: PoolClient;
	ledger: LineLedger;
}

/** One batch's lines of one delivery, from their gate to their ack. */
class Delivery {
	readonly #env: Env;
	readonly #messages: Message<LineMessage>[];
	readonly #upstreamFetch: typeof fetch;
	readonly #maxHoldMs: number;
	readonly #batch: DurableObjectStub<Batch>;
	readonly #startedMs = Date.now();
	#syncedMs = 0;
	#gates: Record<string, LineGate> = {};
	/** Finished lines not yet told to the Batch object. */
	#results: { customId: string; result: LineResult }[] = [];
	#failures: { customId: string; message: string }[] = [];
	readonly #ends = new Map<Message<LineMessage>, LineEnd>();
	readonly #usageWrites: Promise<unknown>[] = [];

	constructor(
		env: Env,
		messages: Message<LineMessage>[],
		upstreamFetch: typeof fetch,
		maxHoldMs: number,
	) {
		this.#env = env;
		this.#messages = messages;
		this.#upstreamFetch = upstreamFetch;
		this.#maxHoldMs = maxHoldMs;
		this.#batch = env.BATCH.getByName((messages[0] as Message<LineMessage>).body.batchId);
	}

	async run(): Promise<void> {
		const route = await this.#route();
		const sending: Promise<void>[] = [];
		await this.#sync(this.#messages);
		for (const [index, message] of this.#messages.entries()) {
			if (typeof route === "string") {
				const runs = this.#gates[message.body.customId] === "run";
				this.#end(message, runs ? { kind: "failed", why: route } : { kind: "done" });
				continue;
			}
			const admitted = await this.#admit(message, route, this.#messages.slice(index));
			if (admitted) sending.push(admitted.sending.then((end) => this.#end(message, end)));
		}
		await Promise.all(sending);
		await this.#sync([]);
		await Promise.all(this.#usageWrites);
		if (typeof route !== "string") await route.ledger.flush();
		await this.#settleMessages();
	}

	/** The delivery's pool and key, or why its lines cannot run. */
	async #route(): Promise<Route | string> {
		const { pool: poolName, tenant } = (this.#messages[0] as Message<LineMessage>).body;
		const loaded = loadConfig(this.#env.TOLLBOOTH_CONFIG);
		const config = loaded.ok ? loaded.config : undefined;
		const pool = config?.pools.find((p) => p.name === poolName);
		const apiKey = pool && (this.#env as unknown as Record<string, unknown>)[pool.apiKeySecret];
		if (!config || !pool || typeof apiKey !== "string" || apiKey === "") {
			return `Pool "${poolName}" is not configured with a provider key.`;
		}
		const policy = await tenantPolicy(this.#env, config, tenant);
		return {
			config,
			pool,
			provider: providerFor(pool.provider),
			apiKey,
			client: new PoolClient(this.#env.POOL, pool.name),
			ledger: new LineLedger(this.#env, config, tenant, policy),
		};
	}

	/**
	 * Takes a line as far as its pool's admission, waiting for spare capacity; then what sends it.
	 * Undefined when the line ended here (done, stopped, refused, or sent back to the queue).
	 */
	async #admit(
		message: Message<LineMessage>,
		route: Route,
		waiting: Message<LineMessage>[],
	): Promise<{ sending: Promise<LineEnd> } | undefined> {
		if (!(await this.#mayRun(message, waiting))) return undefined;
		const line = message.body;
		const cost = estimateCost(route.provider, route.pool, line.path, line.body);
		const charge = await route.ledger.charge(cost, endUserOf(new Headers(), line.body));
		const usage = this.#usage(line, cost.model);
		if (charge.kind === "refused") {
			if (charge.held) return this.#defer(message, 1000);
			usage.end("rejected", charge.code);
			usage.record.status = charge.status;
			this.#write(usage);
			const body = route.provider.errorBody(charge.status, charge.message) as { error?: object };
			if (charge.code === "budget_exhausted" && body.error) {
				// The SDKs' own word for a spend limit (Anthropic's shape has no such field).
				body.error = { ...body.error, type: "insufficient_quota", code: "insufficient_quota" };
			}
			this.#end(message, {
				kind: "result",
				result: {
					kind: "answered",
					statusCode: charge.status,
					requestId: requestIdOf(new Headers()),
					body,
				},
			});
			return undefined;
		}
		const model = charge.model;
		usage.record.model = model;
		const body = charge.downgradedFrom ? { ...line.body, model } : line.body;
		const askedMs = Date.now();
		for (;;) {
			const ask: AcquireRequest = {
				ticketId: `${line.batchId}/${line.customId}/${crypto.randomUUID()}`,
				tenant: line.tenant,
				model,
				priority: "low",
				tokens: cost.tokens,
				maxWaitMs: 0,
				background: true,
			};
			const admission = await route.client.acquire(ask, staying);
			if (admission.kind === "admitted") {
				usage.record.queueMs = Date.now() - askedMs;
				const sent = sendAdmittedLine(
					{ ...route, path: line.path, body, ask, charge, usage },
					this.#upstreamFetch,
				);
				return { sending: sent.finally(() => this.#write(usage)) };
			}
			if (admission.kind === "rejected" && admission.reason === "too_large") {
				await charge.settle({ kind: "not_run" });
				usage.end("rejected", "too_large");
				usage.record.status = 400;
				this.#write(usage);
				this.#end(message, {
					kind: "result",
					result: { kind: "failed", code: "too_large", message: admission.message },
				});
				return undefined;
			}
			const retryAfterMs = "retryAfterMs" in admission ? admission.retryAfterMs : 1000;
			if (Date.now() - this.#startedMs >= this.#maxHoldMs) {
				await charge.settle({ kind: "not_run" });
				return this.#defer(message, retryAfterMs);
			}
			await sleep(Math.min(ASK_AGAIN_MS.max, Math.max(ASK_AGAIN_MS.min, retryAfterMs)));
			if (!(await this.#mayRun(message, waiting))) {
				await charge.settle({ kind: "not_run" });
				return undefined;
			}
		}
	}

	/** Whether the line may still run; syncing with its batch when due (so a cancel stops it). */
	async #mayRun(message: Message<LineMessage>, waiting: Message<LineMessage>[]) {
		if (Date.now() - this.#syncedMs >= SYNC_MS) await this.#sync(waiting);
		if (this.#gates[message.body.customId] === "run") return true;
		this.#end(message, { kind: "done" });
		return false;
	}

	/** One Batch call: the results and failures so far, and which of `waiting` may still run. */
	async #sync(waiting: Message<LineMessage>[]): Promise<void> {
		const results = this.#results;
		const failures = this.#failures;
		this.#results = [];
		this.#failures = [];
		this.#syncedMs = Date.now();
		const ids = waiting.map((message) => message.body.customId);
		if (results.length === 0 && failures.length === 0 && ids.length === 0) return;
		this.#gates = await this.#batch.syncLines(results, failures, ids);
	}

	#usage(line: LineMessage, model: string): UsageRecording {
		const usage = new UsageRecording(new AnalyticsEngineSink(this.#env.USAGE));
		Object.assign(usage.record, {
			tenant: line.tenant,
			pool: line.pool,
			model,
			priority: "background",
		});
		return usage;
	}

	/** The line's one usage data point (its charge is settled already). */
	#write(usage: UsageRecording): void {
		usage.write(usage.record.status, (written) => this.#usageWrites.push(written));
	}

	#defer(message: Message<LineMessage>, retryAfterMs: number): undefined {
		this.#end(message, { kind: "deferred", retryAfterMs });
		return undefined;
	}

	/** Notes how a line ended; its result or failure goes to the Batch object with the next sync. */
	#end(message: Message<LineMessage>, end: LineEnd): void {
		this.#ends.set(message, end);
		const { customId } = message.body;
		if (end.kind === "result") this.#results.push({ customId, result: end.result });
		if (end.kind === "failed") this.#failures.push({ customId, message: end.why });
	}

	/** Acks, retries, dead-letters and defers the delivery's messages, once the Batch knows. */
	async #settleMessages(): Promise<void> {
		const dead: MessageSendRequest<LineMessage>[] = [];
		const deferred: MessageSendRequest<LineMessage>[] = [];
		for (const message of this.#messages) {
			const end = this.#ends.get(message) ?? { kind: "done" };
			const line = message.body;
			// This delivery's attempt, counting the failed sends of earlier messages of the line.
			const attempt = (line.failedAttempts ?? 0) + message.attempts;
			if (end.kind === "failed" && attempt < MAX_LINE_ATTEMPTS) {
				message.retry({ delaySeconds: retryDelaySeconds(attempt, end.retryAfterMs) });
				continue;
			}
			if (end.kind === "failed") dead.push({ body: line, contentType: "json" });
			if (end.kind === "deferred") deferred.push(deferral(message, end.retryAfterMs));
			message.ack();
		}
		await sendLineMessages(this.#env.BATCH_DEAD_LINES, dead);
		await sendLineMessages(this.#env.BATCH_LINES, deferred);
	}
}

/**
 * The line as a new message, to come back after the pool's retry-after, doubled per deferral (1 to
 * 8 s, jittered): waiting spends none of its attempts (the failed ones travel with it).
 */
function deferral(message: Message<LineMessage>, retryAfterMs: number) {
	const line = message.body;
	const deferrals = line.deferrals ?? 0;
	const waitSeconds = Math.max(1, retryAfterMs / 1000) * 2 ** deferrals;
	const jittered = Math.ceil(waitSeconds * (0.5 + Math.random() / 2));
	const delaySeconds = Math.min(DEFER_SECONDS.max, Math.max(DEFER_SECONDS.min, jittered));
	const body: LineMessage = {
		...line,
		failedAttempts: (line.failedAttempts ?? 0) + message.attempts - 1,
		deferrals: deferrals + 1,
	};
	return { body, contentType: "json", delaySeconds } satisfies MessageSendRequest<LineMessage>;
}

function sleep(ms: number): Promise<void> {
	return new Promise((wake) => setTimeout(wake, ms));
}
