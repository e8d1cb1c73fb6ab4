// Through the Worker: a batch line's model meets the rule interactive requests meet (the tenant's
// `models` when it lists them; under a cost budget only priced models), checked when the batch is
// created, the line named in the error.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tenantWithKey } from "../support/admin.ts";
import { call, chat, createBatch, lines } from "../support/batches.ts";
import { postToPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";

let upstream: ReturnType<typeof installMockUpstream>;
beforeEach(() => {
	upstream = installMockUpstream();
});
afterEach(() => upstream.restore());

const UNPRICED = "gpt-unpriced";

describe("a batch line's model", () => {
	it("fails an OpenAI batch with a model the tenant may not send, naming its line", async () => {
		const { key } = await tenantWithKey({ budget: { costPerDayUsd: 5 } });
		// The same model, asked interactively, is refused by the same rule.
		const interactive = await postToPool("openai", { key, body: { ...chat(0), model: UNPRICED } });
		expect(interactive.status).toBe(400);
		const rows = lines(3);
		rows[1] = { ...rows[1], body: { ...chat(1), model: UNPRICED } } as (typeof rows)[number];
		const batch = await createBatch("openai", rows, {}, key);
		expect(batch.status).toBe("failed");
		expect(batch.errors?.data).toEqual([
			{
				line: 2,
				code: "model_not_allowed",
				param: "body.model",
				message: expect.stringContaining(
					`line 2: model "${UNPRICED}" has no price in TOLLBOOTH_CONFIG.prices`,
				),
			},
		]);
		expect(upstream.sent).toHaveLength(0);
	});

	it("refuses an Anthropic batch with such a model at once, in Anthropic's shape", async () => {
		const { key } = await tenantWithKey({ budget: { costPerMonthUsd: 50 } });
		const params = (model: string) => ({
			model,
			max_tokens: 8,
			messages: [{ role: "user", content: "hi" }],
		});
		const response = await call("/anthropic/v1/messages/batches", {
			key,
			body: {
				requests: [
					{ custom_id: "a", params: params("claude-haiku-4-5") },
					{ custom_id: "b", params: params("claude-unpriced") },
				],
			},
		});
		expect(response.status).toBe(400);
		const body = (await response.json()) as { type: string; error: { message: string } };
		expect(body.type).toBe("error");
		expect(body.error.message).toContain('requests[1]: model "claude-unpriced" has no price');
	});

	it("runs any model for a tenant without a cost budget", async () => {
		const { key } = await tenantWithKey({ budget: { tokensPerDay: 1_000_000 } });
		const rows = lines(1).map((row) => ({ ...row, body: { ...row.body, model: UNPRICED } }));
		const batch = await createBatch("openai", rows, {}, key);
		expect(batch.status).toBe("in_progress");
		expect(batch.errors).toBeNull();
	});
});

describe("a tenant's own list of models", () => {
	it("refuses any other model with 403, interactive or in a batch, and sends nothing", async () => {
		const { key, name } = await tenantWithKey({ models: ["gpt-4o-mini"] });
		expect((await postToPool("openai", { key, body: chat(0) })).status).toBe(200);
		const refused = await postToPool("openai", { key, body: { ...chat(1), model: "gpt-4o" } });
		expect(refused.status).toBe(403);
		const error = ((await refused.json()) as { error: { message: string; code: string } }).error;
		expect(error.message).toContain(`tenant "${name}" may not use model "gpt-4o"`);
		expect(error.message).toContain("gpt-4o-mini");
		expect(upstream.sent).toHaveLength(1);

		const rows = lines(2);
		rows[1] = { ...rows[1], body: { ...chat(1), model: "gpt-4o" } } as (typeof rows)[number];
		const batch = await createBatch("openai", rows, {}, key);
		expect(batch.status).toBe("failed");
		expect(batch.errors?.data).toEqual([
			expect.objectContaining({ line: 2, code: "model_not_allowed", param: "body.model" }),
		]);
	});

	it("allows the cheaper model its budget downgrades to", async () => {
		const { key } = await tenantWithKey({
			models: ["gpt-4o"],
			budget: { tokensPerDay: 1_000_000, downgrade: { "gpt-4o": "gpt-4o-mini" } },
		});
		const response = await postToPool("openai", {
			key,
			body: { ...chat(0), model: "gpt-4o-mini" },
		});
		expect(response.status).toBe(200);
	});
});
