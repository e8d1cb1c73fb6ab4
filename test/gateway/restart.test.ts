// Through the Worker: a Pool object that restarts while callers wait does not lose them, and its
// buckets come back as they were.
import { abortAllDurableObjects } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => upstream?.restore());

function send(pool: string) {
	return exports.default.fetch(
		new Request(`http://tollbooth.test/${pool}/v1/chat/completions`, {
			method: "POST",
			headers: { authorization: `Bearer ${TEST_KEYS.teamA}`, "content-type": "application/json" },
			body: JSON.stringify({
				model: "gpt-4o-mini",
				messages: [{ role: "user", content: "Hi" }],
				max_tokens: 8,
			}),
		}),
	);
}

it("callers waiting when the Pool object restarts are re-queued by the Worker and served", async () => {
	upstream = installMockUpstream();
	const status = () => env.POOL.getByName("tight-restart").status("tight-restart");
	await Promise.all([send("tight-restart"), send("tight-restart")]); // the burst is spent
	const waiting = [send("tight-restart"), send("tight-restart")];
	await vi.waitFor(async () => expect((await status()).queued).toBe(2), { interval: 10 });

	await new Promise((resolve) => setTimeout(resolve, 50)); // the Pool writes within 25 ms
	await abortAllDurableObjects();

	const responses = await Promise.all(waiting);
	expect(responses.map((response) => response.status)).toEqual([200, 200]);
	// Served at the bucket's pace, not as a free burst after the restart.
	expect(upstream.sent).toHaveLength(4);
	const [, second, third, fourth] = upstream.sent.map((sent) => sent.atMs) as number[];
	expect((third as number) - (second as number)).toBeGreaterThanOrEqual(500);
	expect((fourth as number) - (third as number)).toBeGreaterThanOrEqual(900);
});
