// The completion webhook's pure rules: which URLs may be called, the signature a receiver checks,
// and the retry schedule (10 s doubling, 5 tries).
import { describe, expect, it } from "vitest";
import { startBatch } from "../../src/core/batch-state.ts";
import {
	afterWebhookAttempt,
	type WebhookDelivery,
	webhookBody,
	webhookUrlProblem,
} from "../../src/core/batch-webhook.ts";
import { signWebhook, verifyWebhook } from "../../src/core/webhook-signature.ts";

const HOSTS = ["hooks.example.com", "127.0.0.1:8789", "*.acme.dev"];

describe("webhook URLs", () => {
	it("allows https to a listed host, a listed port on loopback, and a listed domain's subdomains", () => {
		expect(webhookUrlProblem("https://hooks.example.com/batches?x=1", HOSTS)).toBeUndefined();
		expect(webhookUrlProblem("http://127.0.0.1:8789/hook", HOSTS)).toBeUndefined();
		expect(webhookUrlProblem("https://ci.acme.dev/hook", HOSTS)).toBeUndefined();
	});

	it("refuses other hosts naming the setting, plain http off loopback, credentials, non-URLs", () => {
		expect(webhookUrlProblem("https://evil.example.net/", HOSTS)).toBe(
			"host evil.example.net is not in webhookHosts in TOLLBOOTH_CONFIG (the operator's allow-list of webhook hosts)",
		);
		// Another port of a listed loopback host is another host.
		expect(webhookUrlProblem("http://127.0.0.1:9999/hook", HOSTS)).toContain("webhookHosts");
		expect(webhookUrlProblem("https://acme.dev.evil.net/", HOSTS)).toContain("webhookHosts");
		expect(webhookUrlProblem("http://hooks.example.com/", HOSTS)).toContain("must be https");
		expect(webhookUrlProblem("https://user:pw@hooks.example.com/", HOSTS)).toContain("credentials");
		expect(webhookUrlProblem("hooks.example.com", HOSTS)).toContain("is not a URL");
		expect(webhookUrlProblem("https://hooks.example.com/", [])).toContain("webhookHosts");
	});
});

describe("webhook signatures", () => {
	const body = '{"type":"batch.completed"}';

	it("is t=<seconds>,v1=HMAC-SHA256(secret, '<t>.<body>') in hex", async () => {
		// Computed independently: python3 hmac.new(b"whsec_test", b"1700000000.<body>", sha256).
		expect(await signWebhook("whsec_test", body, 1_700_000_000)).toBe(
			"t=1700000000,v1=8695fc7dd35d0c2c54b4c6d541cf982ed831ef5c65eb8e9f62a7104c281e3d60",
		);
	});

	it("verifies only the same secret, body and a recent timestamp", async () => {
		const header = await signWebhook("s3cret", body, 1000);
		expect(await verifyWebhook("s3cret", body, header, 1000)).toBe(true);
		expect(await verifyWebhook("other", body, header, 1000)).toBe(false);
		expect(await verifyWebhook("s3cret", `${body} `, header, 1000)).toBe(false);
		expect(await verifyWebhook("s3cret", body, header, 1000 + 301)).toBe(false);
		expect(await verifyWebhook("s3cret", body, "v1=abc", 1000)).toBe(false);
	});
});

describe("webhook retries", () => {
	const first: WebhookDelivery = {
		url: "https://hooks.example.com/",
		secretName: "HOOK_SECRET",
		body: "{}",
		state: "pending",
		attempts: 0,
		nextMs: 0,
	};

	it("waits 10, 20, 40, 80 s between the 5 tries, then gives up", () => {
		let delivery = first;
		const delays: number[] = [];
		for (let nowMs = 0; ; ) {
			const next = afterWebhookAttempt(delivery, false, nowMs);
			if (next.kind !== "retry") {
				expect(next).toMatchObject({
					kind: "gave_up",
					delivery: { attempts: 5, state: "gave_up" },
				});
				break;
			}
			delays.push(next.delayMs);
			expect(next.delivery.nextMs).toBe(nowMs + next.delayMs);
			delivery = next.delivery;
			nowMs = delivery.nextMs;
		}
		expect(delays).toEqual([10_000, 20_000, 40_000, 80_000]);
	});

	it("stops at the first delivered send", () => {
		expect(afterWebhookAttempt({ ...first, attempts: 3 }, true, 0)).toEqual({
			kind: "delivered",
			delivery: { ...first, attempts: 4, state: "delivered" },
		});
	});
});

describe("webhook body", () => {
	it("says which batch ended, how, its counts and result files", () => {
		const record = {
			...startBatch(
				{
					id: "batch_1",
					api: "openai" as const,
					tenant: "team-a",
					pool: "openai",
					endpoint: "/v1/chat/completions",
					completionWindow: "24h",
					metadata: { job: "nightly" },
					total: 3,
				},
				60_000,
				5_000,
			),
			status: "completed" as const,
			completedMs: 9_000,
			outputFileId: "file-out",
		};
		const counts = { total: 3, succeeded: 2, failed: 1, cancelled: 0, expired: 0, pending: 0 };
		expect(JSON.parse(webhookBody(record, counts))).toEqual({
			type: "batch.completed",
			batch: {
				id: "batch_1",
				api: "openai",
				pool: "openai",
				status: "completed",
				created_at: 5,
				ended_at: 9,
				request_counts: { total: 3, succeeded: 2, failed: 1, cancelled: 0, expired: 0 },
				output_file_id: "file-out",
				error_file_id: null,
				metadata: { job: "nightly" },
			},
		});
	});
});
