// Through the Worker: the default token burst holds the whole per-minute limit, as providers do, so
// a request the provider would take is admitted at once and only one beyond the minute is refused.
import { exports } from "cloudflare:workers";
import { afterEach, beforeEach, expect, it } from "vitest";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream>;
beforeEach(() => {
	upstream = installMockUpstream();
});
afterEach(() => upstream.restore());

function message(maxTokens: number) {
	return exports.default.fetch(
		new Request("http://tollbooth.test/anthropic-40k/v1/messages", {
			method: "POST",
			headers: { authorization: `Bearer ${TEST_KEYS.teamA}`, "content-type": "application/json" },
			body: JSON.stringify({
				model: "claude-sonnet-4-5",
				max_tokens: maxTokens,
				messages: [{ role: "user", content: "Write a long story" }],
			}),
		}),
	);
}

it("admits max_tokens 8192 through a pool of 40,000 tokens a minute, at once", async () => {
	const response = await message(8192);
	expect(response.status).toBe(200);
	expect(response.headers.get("x-tollbooth-queue-ms")).toBe("0");
	await response.body?.cancel();
	expect(upstream.sent).toHaveLength(1);
});

it("refuses at once, without calling the provider, a request larger than the whole minute", async () => {
	const response = await message(50_000);
	expect(response.status).toBe(400);
	const body = (await response.json()) as { type: string; error: { message: string } };
	expect(body.type).toBe("error");
	expect(upstream.sent).toHaveLength(0);
});
