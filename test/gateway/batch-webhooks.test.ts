// Through the Worker: a batch's completion webhook goes to an allow-listed loopback receiver (a
// fetch spy), signed with the tenant's secret, retried from the Batch object's alarm with 10 s
// doubling delays for 5 tries, logged without the secret; unlisted hosts are refused at creation.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { verifyWebhook } from "../../src/core/webhook-signature.ts";
import { createMockProvider } from "../../src/mock/provider.ts";
import { adminCall, tenantWithKey } from "../support/admin.ts";
import { type BatchObject, call, createBatch, lines, settled } from "../support/batches.ts";
import {
	MOCK_ORIGIN,
	TEST_PROVIDER_KEY,
	TEST_WEBHOOK_SECRET,
	WEBHOOK_RECEIVER_HOST,
} from "../support/test-config.ts";

const HOOK_URL = `http://${WEBHOOK_RECEIVER_HOST}/hooks/batches?token=query-token-123`;

interface Received {
	body: string;
	signature: string | null;
	atMs: number;
}

/** Routes the mock provider's origin to the mock, and the receiver's to `answer`; nothing else. */
function installReceiver(answer: (attempt: number) => number) {
	const mock = createMockProvider({
		requestsPerMinute: 1_000_000,
		tokensPerMinute: 1_000_000_000,
		latencyMs: 0,
		chunkDelayMs: 0,
		apiKey: TEST_PROVIDER_KEY,
	});
	const received: Received[] = [];
	const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
		const request = new Request(input, init);
		const url = new URL(request.url);
		if (url.origin === MOCK_ORIGIN) return mock.fetch(request);
		if (url.host !== WEBHOOK_RECEIVER_HOST) throw new Error(`a test tried to reach ${url.origin}`);
		received.push({
			body: await request.text(),
			signature: request.headers.get("x-tollbooth-signature"),
			atMs: Date.now(),
		});
		return new Response(null, { status: answer(received.length) });
	});
	return { received, restore: () => spy.mockRestore() };
}

let receiver: ReturnType<typeof installReceiver> | undefined;
afterEach(() => {
	vi.useRealTimers();
	receiver?.restore();
	vi.restoreAllMocks();
});

interface WebhookView {
	url: string;
	state: string;
	attempts: number;
	nextAt: string | null;
}

/** The batch's webhook as an operator sees it in GET /admin/batches. */
async function webhookOf(batchId: string): Promise<WebhookView> {
	const page = (await (await adminCall("GET", "/batches?limit=100")).json()) as {
		batches: { id: string; webhook: WebhookView }[];
	};
	const batch = page.batches.find((entry) => entry.id === batchId);
	if (!batch) throw new Error(`${batchId} is not listed`);
	return batch.webhook;
}

const webhookTenant = (webhook: object = { secret: "TEST_WEBHOOK_SECRET" }) =>
	tenantWithKey({ webhook });

/** The log lines of event "webhook" written so far. */
function webhookLogs(spies: { mock: { calls: unknown[][] } }[]) {
	return spies
		.flatMap((spy) => spy.mock.calls.map((args) => String(args[0])))
		.filter((line) => line.includes('"event":"webhook"'));
}

describe("batch completion webhooks", () => {
	it("POSTs a signed body to the batch's webhook_url once it completes", async () => {
		receiver = installReceiver(() => 204);
		const logs = [vi.spyOn(console, "log"), vi.spyOn(console, "error")];
		const { key } = await webhookTenant();
		const created = await createBatch(
			"openai",
			lines(3),
			{ metadata: { webhook_url: HOOK_URL } },
			key,
		);
		const done = await settled("openai", created.id, 15_000, key);
		await vi.waitFor(() => expect(receiver?.received).toHaveLength(1), { timeout: 5000 });
		const [delivery] = receiver.received as [Received];
		const nowSeconds = Math.floor(Date.now() / 1000);
		expect(delivery.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
		expect(
			await verifyWebhook(TEST_WEBHOOK_SECRET, delivery.body, delivery.signature ?? "", nowSeconds),
		).toBe(true);
		expect(
			await verifyWebhook("another-secret", delivery.body, delivery.signature ?? "", nowSeconds),
		).toBe(false);
		expect(JSON.parse(delivery.body)).toMatchObject({
			type: "batch.completed",
			batch: {
				id: created.id,
				status: "completed",
				request_counts: { total: 3, succeeded: 3, failed: 0 },
				output_file_id: done.output_file_id,
				error_file_id: null,
			},
		});
		const logged = webhookLogs(logs);
		expect(logged).toHaveLength(1);
		expect(JSON.parse(logged[0] as string)).toMatchObject({
			event: "webhook",
			batch: created.id,
			receiver: `${WEBHOOK_RECEIVER_HOST}/hooks/batches`,
			attempt: 1,
			status: 204,
			outcome: "delivered",
		});
		for (const line of logged) {
			expect(line).not.toContain(TEST_WEBHOOK_SECRET);
			expect(line).not.toContain("query-token-123");
		}
		// Delivered: nothing is left to send and no alarm waits.
		const stub = env.BATCH.getByName(created.id);
		expect(await webhookOf(created.id)).toEqual({
			url: HOOK_URL,
			state: "delivered",
			attempts: 1,
			nextAt: null,
		});
		expect(await runDurableObjectAlarm(stub)).toBe(false);
	});

	it("retries a failing receiver 10, 20, 40, 80 s apart, 5 tries in all, then gives up", async () => {
		receiver = installReceiver(() => 503);
		const logs = [vi.spyOn(console, "log"), vi.spyOn(console, "error")];
		const { key } = await webhookTenant({ secret: "TEST_WEBHOOK_SECRET", url: HOOK_URL });
		// A file of bad lines: the batch fails at once, so its webhook is due at once.
		const created = await createBatch("openai", "not json", {}, key);
		expect(created.status).toBe("failed");
		await vi.waitFor(() => expect(receiver?.received).toHaveLength(1), { timeout: 5000 });
		const stub = env.BATCH.getByName(created.id);
		const waits: number[] = [];
		// The Batch object runs in this isolate: its clock is moved to each retry's time, and its
		// alarm run then, instead of waiting 150 s.
		vi.useFakeTimers({ toFake: ["Date"] });
		let lastSendMs = receiver.received[0]?.atMs ?? 0;
		for (let attempt = 2; attempt <= 5; attempt++) {
			const pending = await webhookOf(created.id);
			expect(pending).toMatchObject({ state: "pending", attempts: attempt - 1 });
			const dueMs = Date.parse(pending.nextAt as string);
			waits.push(Math.round((dueMs - lastSendMs) / 1000));
			vi.setSystemTime(dueMs);
			lastSendMs = dueMs;
			expect(await runDurableObjectAlarm(stub)).toBe(true);
			expect(receiver.received).toHaveLength(attempt);
		}
		expect(waits).toEqual([10, 20, 40, 80]);
		expect(await webhookOf(created.id)).toMatchObject({ state: "gave_up", attempts: 5 });
		expect(await runDurableObjectAlarm(stub)).toBe(false);
		expect(receiver.received).toHaveLength(5);
		// Every try sent the same body, each signed anew.
		expect(new Set(receiver.received.map((hit) => hit.body)).size).toBe(1);
		expect(JSON.parse(receiver.received[0]?.body ?? "")).toMatchObject({
			type: "batch.failed",
			batch: { id: created.id, status: "failed" },
		});
		const outcomes = webhookLogs(logs).map((line) => JSON.parse(line));
		expect(outcomes.map((line) => [line.attempt, line.outcome, line.delayMs])).toEqual([
			[1, "retry", 10_000],
			[2, "retry", 20_000],
			[3, "retry", 40_000],
			[4, "retry", 80_000],
			[5, "gave_up", undefined],
		]);
		expect(outcomes.every((line) => line.status === 503 && line.cause === "receiver_status")).toBe(
			true,
		);
	});

	it("stops retrying once the receiver answers 2xx", async () => {
		receiver = installReceiver((attempt) => (attempt < 2 ? 500 : 200));
		const { key } = await webhookTenant({ secret: "TEST_WEBHOOK_SECRET", url: HOOK_URL });
		const created = await createBatch("openai", "[]", {}, key);
		await vi.waitFor(() => expect(receiver?.received).toHaveLength(1), { timeout: 5000 });
		const stub = env.BATCH.getByName(created.id);
		// Early, the alarm sends nothing; at the retry's time it does.
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(receiver.received).toHaveLength(1);
		vi.useFakeTimers({ toFake: ["Date"] });
		vi.setSystemTime(Date.parse((await webhookOf(created.id)).nextAt as string));
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(receiver.received).toHaveLength(2);
		expect(await webhookOf(created.id)).toMatchObject({ state: "delivered", attempts: 2 });
		expect(await runDurableObjectAlarm(stub)).toBe(false);
	});

	it("refuses, at creation, a webhook_url the operator has not allow-listed", async () => {
		receiver = installReceiver(() => 200);
		const { key } = await webhookTenant();
		const upload = async (tenantKey: string) => {
			const form = new FormData();
			form.set("purpose", "batch");
			form.set("file", new File([JSON.stringify(lines(1)[0])], "in.jsonl"));
			const response = await call("/openai/v1/files", { body: form, key: tenantKey });
			return ((await response.json()) as { id: string }).id;
		};
		const fileId = await upload(key);
		const createWith = (webhook_url: string, tenantKey = key) =>
			call("/openai/v1/batches", {
				key: tenantKey,
				body: {
					input_file_id: fileId,
					endpoint: "/v1/chat/completions",
					completion_window: "24h",
					metadata: { webhook_url },
				},
			});
		const expectRefusal = async (response: Response, fragment: string) => {
			expect(response.status).toBe(400);
			const { error } = (await response.json()) as {
				error: { message: string; type: string; param: string | null };
			};
			expect(error.type).toBe("invalid_request_error");
			expect(error.param).toBe("metadata.webhook_url");
			expect(error.message).toContain(fragment);
		};
		await expectRefusal(
			await createWith("https://elsewhere.example.net/hook"),
			"host elsewhere.example.net is not in webhookHosts in TOLLBOOTH_CONFIG",
		);
		await expectRefusal(await createWith("http://hooks.example.com/hook"), "must be https");
		await expectRefusal(
			await createWith(`http://127.0.0.1:9999/hook`),
			"host 127.0.0.1:9999 is not in webhookHosts",
		);
		// A tenant without a webhook secret cannot have its batches' webhooks signed.
		const { key: unsigned } = await tenantWithKey();
		const unsignedFile = await upload(unsigned);
		const response = await call("/openai/v1/batches", {
			key: unsigned,
			body: {
				input_file_id: unsignedFile,
				endpoint: "/v1/chat/completions",
				completion_window: "24h",
				metadata: { webhook_url: HOOK_URL },
			},
		});
		await expectRefusal(response, "has no webhook secret");
		// Signing with a provider key would hand it to the receiver: refused as the operator's error.
		const { key: providerKeySigned } = await webhookTenant({ secret: "TEST_PROVIDER_KEY" });
		const misconfigured = await call("/openai/v1/batches", {
			key: providerKeySigned,
			body: {
				input_file_id: await upload(providerKeySigned),
				endpoint: "/v1/chat/completions",
				completion_window: "24h",
				metadata: { webhook_url: HOOK_URL },
			},
		});
		expect(misconfigured.status).toBe(500);
		expect(await misconfigured.text()).not.toContain(TEST_PROVIDER_KEY);
		// Nothing was created, and nobody was called.
		const listed = (await (await call("/openai/v1/batches", { key })).json()) as {
			data: BatchObject[];
		};
		expect(listed.data).toEqual([]);
		expect(receiver.received).toEqual([]);
	});

	it("refuses an Anthropic batch whose tenant webhook is off the allow-list, in Anthropic's shape", async () => {
		const { key } = await webhookTenant({
			secret: "TEST_WEBHOOK_SECRET",
			url: "https://not-listed.example.org/hook",
		});
		const response = await call("/anthropic/v1/messages/batches", {
			key,
			body: {
				requests: [
					{
						custom_id: "a",
						params: { model: "claude-haiku-4-5", max_tokens: 8, messages: [] },
					},
				],
			},
		});
		expect(response.status).toBe(400);
		const body = (await response.json()) as { type: string; error: { message: string } };
		expect(body.type).toBe("error");
		expect(body.error.message).toContain("webhook.url cannot be used: host not-listed.example.org");
	});
});
