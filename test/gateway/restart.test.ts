// Through the Worker: a Pool object that restarts while callers wait does not lose them, and its
// buckets come back as they were.
import { abortAllDurableObjects } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { postToPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => upstream?.restore());

const send = (pool: string) => postToPool(pool);

it("callers waiting when the Pool object restarts are re-queued by the Worker and served", async () => {
	upstream = installMockUpstream();
	const status = () => env.POOL.getByName("tight-restart").status();
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
