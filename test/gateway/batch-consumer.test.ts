// The queue consumer, called as the runtime calls it (createMessageBatch / getQueueResult): a line
// answered is acked and recorded, a failing one retried with a growing delay, a dead one recorded
// with its last error, and a line delivered twice sent and recorded once.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Batch } from "../../src/durable/batch.ts";
import { createBatchConsumer } from "../../src/gateway/batch-consumer.ts";
import type { LineMessage } from "../../src/gateway/batch-queue.ts";
import worker from "../../src/index.ts";
import { tenantWithKey } from "../support/admin.ts";
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

	it("holds a line its pool has no spare capacity for and sends it once room comes back, with no new message", async () => {
		upstream = installMockUpstream();
		// tight-full admits a background line only with nothing in flight and 1.5 of its 2 requests
		// left: the second of two waits about half a second for the refill.
		const { id, stub } = await newBatch(["a", "b"]);
		const onTight = (customId: string) => ({ ...line(id, customId), pool: "tight-full" });
		const resent = vi.spyOn(env.BATCH_LINES, "sendBatch");
		const { result } = await deliver(LINES_QUEUE, [{ body: onTight("a") }, { body: onTight("b") }]);
		expect(result.explicitAcks).toHaveLength(2);
		expect(result.retryMessages).toEqual([]);
		expect(resent).not.toHaveBeenCalled();
		resent.mockRestore();
		const [first, second] = upstream.sent.map((sent) => sent.atMs);
		expect((second ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(300);
		expect((await view(stub)).counts).toMatchObject({ succeeded: 2, pending: 0 });
	});

	it("sends lines still waiting when a delivery has been held long enough back as new messages, keeping their failed attempts", async () => {
		upstream = installMockUpstream();
		const { id, stub } = await newBatch(["a", "b"]);
		const onTight = (customId: string) => ({ ...line(id, customId), pool: "tight-shed" });
		const resent = vi.spyOn(env.BATCH_LINES, "sendBatch");
		const consume = createBatchConsumer({ maxHoldMs: 0 });
		const batch = createMessageBatch<LineMessage>(LINES_QUEUE, [
			{ id: "m-a", timestamp: new Date(), attempts: 1, body: onTight("a") },
			{
				id: "m-b",
				timestamp: new Date(),
				attempts: 2,
				body: { ...onTight("b"), failedAttempts: 1 },
			},
		]);
		const ctx = createExecutionContext();
		await consume(batch, env);
		const result = await getQueueResult(batch, ctx);
		expect(result.explicitAcks).toHaveLength(2);
		expect(resent).toHaveBeenCalledTimes(1);
		const [[again]] = resent.mock.calls as unknown as [[MessageSendRequest<LineMessage>[]]];
		// Its one earlier failure and the one of its first delivery; this delivery was only a wait.
		expect(again).toHaveLength(1);
		expect(again[0]?.body).toMatchObject({ customId: "b", failedAttempts: 2, deferrals: 1 });
		expect(again[0]?.delaySeconds).toBeGreaterThanOrEqual(1);
		resent.mockRestore();
		expect(upstream.sent).toHaveLength(1);
		expect((await view(stub)).counts).toMatchObject({ succeeded: 1, pending: 1 });
	});

	it("stops lines held for spare capacity within a second or two of a cancel", async () => {
		upstream = installMockUpstream();
		// tight-priority's burst spent: its next background line fits in about 1.5 s.
		await Promise.all([postToPool("tight-priority"), postToPool("tight-priority")]);
		const sentBefore = upstream.sent.length;
		const { id, stub } = await newBatch(["a", "b", "c"]);
		const onTight = (customId: string) => ({ ...line(id, customId), pool: "tight-priority" });
		const startedMs = Date.now();
		const delivered = deliver(
			LINES_QUEUE,
			["a", "b", "c"].map((c) => ({ body: onTight(c) })),
		);
		await new Promise((wake) => setTimeout(wake, 200));
		await stub.cancel();
		const { result } = await delivered;
		expect(Date.now() - startedMs).toBeLessThan(2500);
		expect(result.explicitAcks).toHaveLength(3);
		expect(upstream.sent).toHaveLength(sentBefore);
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

	it("writes one usage data point for each line it sends, marked background", async () => {
		upstream = installMockUpstream();
		const points: AnalyticsEngineDataPoint[] = [];
		const spy = vi.spyOn(env.USAGE, "writeDataPoint").mockImplementation((point) => {
			if (point) points.push(point);
		});
		const { id } = await newBatch(["a", "b"]);
		await deliver(LINES_QUEUE, [{ body: line(id, "a") }]);
		spy.mockRestore();
		expect(points).toHaveLength(1);
		const [point] = points;
		expect(point?.indexes).toEqual(["team-a"]);
		expect(point?.blobs).toEqual(["team-a", "openai", "gpt-4o-mini", "ok", "background", "ok"]);
		expect(point?.doubles?.[0]).toBe(200);
		const stats = upstream.mock.stats();
		expect(point?.doubles?.[1]).toBe(stats.promptTokens);
		expect(point?.doubles?.[2]).toBe(stats.completionTokens);
		expect(point?.doubles?.[6]).toBe(1); // attempts: this send
		expect(JSON.stringify(points)).not.toContain("test-provider-key");
	});
});

describe("batch lines and their tenant's budget", () => {
	const today = () => new Date().toISOString().slice(0, 10);
	const ledger = (tenant: string) => env.BUDGET.getByName(tenant).usage(today(), today(), false);

	/** A batch of `customIds` owned by `tenant` (a runtime tenant with a budget). */
	async function budgetedBatch(tenant: string, customIds: string[]) {
		const { id, stub } = await newBatch(customIds);
		return {
			stub,
			lineOf: (customId: string, lineBody = body) => ({
				...line(id, customId),
				tenant,
				body: lineBody,
			}),
		};
	}

	it("charges a line when it runs with what the provider counted, and holds no reservation after", async () => {
		upstream = installMockUpstream();
		const { name } = await tenantWithKey({ budget: { tokensPerDay: 100_000 } });
		const { lineOf } = await budgetedBatch(name, ["a"]);
		await deliver(LINES_QUEUE, [{ body: lineOf("a") }]);
		const stats = upstream.mock.stats();
		const [row] = await ledger(name);
		expect(row).toMatchObject({
			model: "gpt-4o-mini",
			requests: 1,
			inputTokens: stats.promptTokens,
			outputTokens: stats.completionTokens,
		});
		const status = await env.BUDGET.getByName(name).status();
		expect(status.reservations).toBe(0);
	});

	it("records a line its exhausted budget refuses as failed with insufficient_quota, sends nothing and does not retry it", async () => {
		upstream = installMockUpstream();
		const { name } = await tenantWithKey({ budget: { tokensPerDay: 1 } });
		const { stub, lineOf } = await budgetedBatch(name, ["a"]);
		const points: AnalyticsEngineDataPoint[] = [];
		const spy = vi.spyOn(env.USAGE, "writeDataPoint").mockImplementation((point) => {
			if (point) points.push(point);
		});
		const { result } = await deliver(LINES_QUEUE, [{ body: lineOf("a") }]);
		spy.mockRestore();
		// Its data point: refused in the background, without a send.
		expect(points.map((point) => point.blobs?.slice(3))).toEqual([
			["rejected", "background", "budget_exhausted"],
		]);
		expect(points[0]?.doubles?.[0]).toBe(429);
		expect(points[0]?.doubles?.[6]).toBe(0);
		expect(result.retryMessages).toEqual([]);
		expect(result.explicitAcks).toHaveLength(1);
		expect(upstream.sent).toHaveLength(0);
		const seen = await view(stub);
		expect(seen.counts).toMatchObject({ failed: 1, pending: 0 });
		const errorFile = await (await env.BATCH_FILES.get(`files/${seen.record.errorFileId}`))?.text();
		const entry = JSON.parse((errorFile ?? "").trim());
		expect(entry).toMatchObject({
			custom_id: "a",
			response: {
				status_code: 429,
				body: { error: { type: "insufficient_quota", code: "insufficient_quota" } },
			},
		});
		expect(entry.response.body.error.message).toContain("Budget exhausted");
		expect((await env.BUDGET.getByName(name).status()).reservations).toBe(0);
	});

	it("sends a line downgraded to the model its tenant's budget maps it to, past downgradeAt", async () => {
		upstream = installMockUpstream();
		// Past 5 tokens of the day's 100,000, gpt-4o becomes gpt-4o-mini: the second line is past it.
		const { name } = await tenantWithKey({
			budget: {
				tokensPerDay: 100_000,
				downgradeAt: 0.00005,
				downgrade: { "gpt-4o": "gpt-4o-mini" },
			},
		});
		const { lineOf } = await budgetedBatch(name, ["a", "b"]);
		const gpt4o = { ...body, model: "gpt-4o" };
		await deliver(LINES_QUEUE, [{ body: lineOf("a", gpt4o) }]);
		await deliver(LINES_QUEUE, [{ body: lineOf("b", gpt4o) }]);
		expect(upstream.sent).toHaveLength(2);
		expect(JSON.parse(upstream.sent[1]?.body ?? "{}").model).toBe("gpt-4o-mini");
		expect((await ledger(name)).map((row) => row.model)).toContain("gpt-4o-mini");
	});

	it("charges nothing for a send the provider failed, and releases its reservation", async () => {
		upstream = installMockUpstream({}, () => new Response("overloaded", { status: 503 }));
		const { name } = await tenantWithKey({ budget: { tokensPerDay: 100_000 } });
		const { lineOf } = await budgetedBatch(name, ["a"]);
		const { result } = await deliver(LINES_QUEUE, [{ body: lineOf("a") }]);
		expect(result.retryMessages).toHaveLength(1);
		const rows = await ledger(name);
		expect(rows.reduce((sum, row) => sum + row.inputTokens + row.outputTokens, 0)).toBe(0);
		expect((await env.BUDGET.getByName(name).status()).reservations).toBe(0);
	});
});
