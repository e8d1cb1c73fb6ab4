// One webhook send with an injected fetch: the allow-list and the secret are checked again at send
// time, a redirect or an unreachable receiver is a failed try, and nothing is sent off the list.
import { describe, expect, it, vi } from "vitest";
import type { WebhookDelivery } from "../../src/core/batch-webhook.ts";
import { sendWebhook } from "../../src/durable/batch-webhook.ts";

const delivery: WebhookDelivery = {
	url: "https://hooks.example.com/batches",
	secretName: "HOOK_SECRET",
	body: '{"type":"batch.completed"}',
	state: "pending",
	attempts: 0,
	nextMs: 0,
};
const owner = { batchId: "batch_1", tenant: "team-a", pool: "openai" };
const config = (webhookHosts: string[]) =>
	JSON.stringify({
		pools: [
			{
				name: "openai",
				provider: "openai",
				baseUrl: "https://api.openai.com/v1",
				apiKeySecret: "OPENAI_API_KEY",
				limits: { requestsPerMinute: 10, tokensPerMinute: 1000, maxConcurrent: 1 },
			},
		],
		tenants: [{ name: "team-a", keySha256: ["0".repeat(64)], pools: ["*"] }],
		webhookHosts,
	});
const listed = { TOLLBOOTH_CONFIG: config(["hooks.example.com"]), HOOK_SECRET: "s3cret" };

describe("sending a webhook", () => {
	it("sends nothing, and stops, once the host is off the operator's list", async () => {
		const send = vi.fn<typeof fetch>();
		const env = { ...listed, TOLLBOOTH_CONFIG: config(["other.example.com"]) };
		expect(await sendWebhook(delivery, owner, env, send, 0)).toMatchObject({ kind: "gave_up" });
		expect(send).not.toHaveBeenCalled();
	});

	it("without its secret, sends nothing and tries again later", async () => {
		const send = vi.fn<typeof fetch>();
		const next = await sendWebhook(delivery, owner, { ...listed, HOOK_SECRET: "" }, send, 0);
		expect(next).toMatchObject({ kind: "retry", delayMs: 10_000 });
		expect(send).not.toHaveBeenCalled();
	});

	it("counts a redirect or an unreachable receiver as a failed try, never following it", async () => {
		const redirect = vi.fn<typeof fetch>(async () =>
			Response.redirect("https://elsewhere.example.net/", 302),
		);
		expect(await sendWebhook(delivery, owner, listed, redirect, 0)).toMatchObject({
			kind: "retry",
		});
		expect(redirect.mock.calls[0]?.[1]?.redirect).toBe("manual");
		const unreachable = vi.fn<typeof fetch>(async () => {
			throw new Error("connection refused");
		});
		const last = { ...delivery, attempts: 4 };
		expect(await sendWebhook(last, owner, listed, unreachable, 0)).toMatchObject({
			kind: "gave_up",
		});
	});

	it("POSTs the body with its signature and content type", async () => {
		const send = vi.fn<typeof fetch>(async () => new Response("ok"));
		expect(await sendWebhook(delivery, owner, listed, send, 1_700_000_000_000)).toMatchObject({
			kind: "delivered",
			delivery: { state: "delivered", attempts: 1 },
		});
		const [url, init] = send.mock.calls[0] ?? [];
		expect(url).toBe(delivery.url);
		expect(init?.method).toBe("POST");
		expect(init?.body).toBe(delivery.body);
		const headers = new Headers(init?.headers);
		expect(headers.get("content-type")).toBe("application/json");
		expect(headers.get("x-tollbooth-signature")).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
	});
});
