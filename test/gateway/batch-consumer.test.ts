// The queue consumer, called as the runtime calls it (createMessageBatch / getQueueResult): a line
// answered is acked and recorded, a failing one retried with a growing delay, a dead one recorded
// with its last error, and a line delivered twice sent and recorded once.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Batch } from "../../src/durable/batch.ts";
import type { LineMessage } from "../../src/gateway/batch-queue.ts";
import worker from "../../src/index.ts";
import { postToPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";

const LINES_QUEUE = "tollbooth-batch-lines";
const DEAD_QUEUE = "tollbooth-batch-dead-lines";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => upstream?.restore());

const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }], max_tokens: 8 };

/** A new batch of `customIds` in its own object, in progress, owned by team-a in pool "openai". */
async function newBatch(customIds: string[]) {
	const id = `batch_${crypto.randomUUID().replaceAll("-", "")}`;
	const stub = env.BATCH.getByName(id);
	await stub.create(
		{
			id,
			api: "openai",
			tenant: "team-a",
			pool: "openai",
			endpoint: "/v1/chat/completions",
			completionWindow: "24h",
			metadata: null,
			total: customIds.length,
		},
		customIds,
		86_400_000,
	);
	return { id, stub };
}

async function view(stub: DurableObjectStub<Batch>) {
	const seen = await stub.view();
	if (!seen) throw new Error("the batch was not created");
	return seen;
}

function line(batchId: string, customId: string): LineMessage {
	return { batchId, pool: "openai", tenant: "team-a", customId, path: "/chat/completions", body };
}

async function deliver(queue: string, messages: { body: LineMessage; attempts?: number }[]) {
	const batch = createMessageBatch<LineMessage>(
		queue,
		messages.map((message, index) => ({
			id: `m${index}-${crypto.randomUUID()}`,
			timestamp: new Date(),
			attempts: message.attempts ?? 1,
			body: message.body,
		})),
	);
	// getQueueResult says which messages were retried, not after what delay: the spies do.
	const retries = batch.messages.map((message) => vi.spyOn(message, "retry"));
	const ctx = createExecutionContext();
	await worker.queue(batch, env);
	return { batch, retries, result: await getQueueResult(batch, ctx) };
}

describe("batch line consumer", () => {
	it("acks an answered line and records its result once", async () => {
		upstream = installMockUpstream();
		const { id, stub } = await newBatch(["a"]);
		const { batch, result } = await deliver(LINES_QUEUE, [{ body: line(id, "a") }]);
		expect(result.explicitAcks).toEqual([batch.messages[0]?.id]);
		expect(result.retryMessages).toEqual([]);
		const seen = await view(stub);
		expect(seen.counts).toMatchObject({ total: 1, succeeded: 1, pending: 0 });
		expect(seen.record.status).toBe("completed");
		expect(seen.record.outputFileId).toMatch(/^file-/);
	});

	it("retries a line the provider failed, after a delay that grows with its attempts", async () => {
		upstream = installMockUpstream({}, () => new Response("overloaded", { status: 503 }));
		const { id, stub } = await newBatch(["a", "b"]);
		const { batch, result, retries } = await deliver(LINES_QUEUE, [
			{ body: line(id, "a"), attempts: 1 },
			{ body: line(id, "b"), attempts: 3 },
		]);
		expect(result.retryMessages.map((retried) => retried.msgId)).toEqual(
			batch.messages.map((message) => message.id),
		);
		expect(retries[0]).toHaveBeenCalledWith({ delaySeconds: 2 });
		expect(retries[1]).toHaveBeenCalledWith({ delaySeconds: 8 });
		expect(result.explicitAcks).toEqual([]);
		expect((await view(stub)).counts.pending).toBe(2);
	});

	it("after its last attempt sends a line to the dead-letter queue, which records its last error", async () => {
		upstream = installMockUpstream({}, () => new Response("overloaded", { status: 503 }));
		const { id, stub } = await newBatch(["a"]);
		// Its fifth send: three failed in an earlier message (before it was deferred), this is the second.
		const { result } = await deliver(LINES_QUEUE, [
			{ body: { ...line(id, "a"), failedAttempts: 3 }, attempts: 2 },
		]);
		expect(result.retryMessages).toEqual([]);
		expect(result.explicitAcks).toHaveLength(1);
		// The local dead-letter queue delivers it to the Worker's consumer.
		await vi.waitFor(async () => expect((await view(stub)).counts.failed).toBe(1), {
			timeout: 10_000,
			interval: 100,
		});
		const seen = await view(stub);
		expect(seen.counts).toMatchObject({ failed: 1, pending: 0 });
		expect(seen.record.status).toBe("completed");
		const errorFile = await (await env.BATCH_FILES.get(`files/${seen.record.errorFileId}`))?.text();
		const [entry] = (errorFile ?? "")
			.trim()
			.split("\n")
			.map((text) => JSON.parse(text));
		expect(entry).toMatchObject({
			custom_id: "a",
			response: null,
			error: { code: "max_attempts_exceeded", message: "The provider answered 503." },
		});
		// A second delivery from the dead-letter queue changes nothing.
		const again = await deliver(DEAD_QUEUE, [{ body: line(id, "a") }]);
		expect(again.result.explicitAcks).toHaveLength(1);
		expect((await view(stub)).counts).toMatchObject({ failed: 1, succeeded: 0 });
	});

	it("sends a line back as a new message, keeping its failed attempts, when the pool has no spare capacity", async () => {
		upstream = installMockUpstream();
		// tight-full admits about one background line a second: the second of two waits.
		const { id, stub } = await newBatch(["a", "b"]);
		const onTight = (customId: string) => ({ ...line(id, customId), pool: "tight-full" });
		const resent = vi.spyOn(env.BATCH_LINES, "send");
		const { result } = await deliver(LINES_QUEUE, [
			{ body: onTight("a") },
			{ body: { ...onTight("b"), failedAttempts: 1 }, attempts: 2 },
		]);
		expect(result.explicitAcks).toHaveLength(2);
		expect(result.retryMessages).toEqual([]);
		expect(resent).toHaveBeenCalledTimes(1);
		const [body, options] = resent.mock.calls[0] ?? [];
		// Its one earlier failure and the one of its first delivery; this delivery was only a wait.
		expect(body).toMatchObject({ customId: "b", failedAttempts: 2 });
		expect(options).toMatchObject({ delaySeconds: expect.any(Number) });
		expect((options as { delaySeconds: number }).delaySeconds).toBeGreaterThanOrEqual(1);
		resent.mockRestore();
		expect((await view(stub)).counts.succeeded).toBe(1);
	});

	it("does not let a batch's failing lines open the breaker on interactive traffic", async () => {
		upstream = installMockUpstream({}, async (request) => {
			const body = await request.clone().text();
			return body.includes("always-fail") ? new Response("boom", { status: 500 }) : undefined;
		});
		const ids = Array.from({ length: 20 }, (_, n) => `f${n}`);
		const { id } = await newBatch(ids);
		const failing = (customId: string) => ({
			...line(id, customId),
			pool: "breaker",
			body: { ...body, messages: [{ role: "user", content: "always-fail" }] },
		});
		const { result } = await deliver(
			LINES_QUEUE,
			ids.map((customId) => ({ body: failing(customId) })),
		);
		expect(result.retryMessages.length + result.explicitAcks.length).toBeGreaterThan(0);
		expect(upstream.sent.length).toBeGreaterThan(5);
		expect((await env.POOL.getByName("breaker").status()).provider.state).toBe("closed");
		expect((await postToPool("breaker")).status).toBe(200);
	});

	it("sends and records a line delivered twice only once", async () => {
		upstream = installMockUpstream();
		const { id, stub } = await newBatch(["a", "b"]);
		await deliver(LINES_QUEUE, [{ body: line(id, "a") }]);
		const { result } = await deliver(LINES_QUEUE, [{ body: line(id, "a") }]);
		expect(result.explicitAcks).toHaveLength(1);
		expect(upstream.sent).toHaveLength(1);
		expect((await view(stub)).counts).toMatchObject({ succeeded: 1, pending: 1 });
		// Even a result recorded twice (a consumer that died after sending) counts once.
		expect(await stub.recordLine("a", { kind: "failed", code: "x", message: "late" })).toBe(false);
		expect((await view(stub)).counts).toMatchObject({ succeeded: 1, failed: 0, pending: 1 });
	});
});
