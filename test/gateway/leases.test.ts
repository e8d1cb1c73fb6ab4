// Through the Worker: a stream that lasts several lease lifetimes renews its lease while it is
// relayed, so it keeps its slot and finishes; once it ends the slot is free at once.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, expect, it } from "vitest";
import { poolStatus, postToPool, settledPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => upstream?.restore());

it("a stream outliving its lease's lifetime renews it, keeps its slot and finishes", async () => {
	// "renewing": one request at a time, leases expire 300 ms after admission or their last renewal.
	upstream = installMockUpstream({ chunkDelayMs: 100 });
	const startedMs = Date.now();
	const streaming = await postToPool("renewing", {
		body: {
			model: "gpt-4o-mini",
			messages: [{ role: "user", content: "Hi" }],
			max_tokens: 16,
			stream: true,
		},
	});
	expect(streaming.status).toBe(200);
	const reader = streaming.body?.getReader();
	const decoder = new TextDecoder();
	let text = "";
	let checkedMidStream = false;
	for (let chunk = await reader?.read(); chunk && !chunk.done; chunk = await reader?.read()) {
		text += decoder.decode(chunk.value, { stream: true });
		if (!checkedMidStream && Date.now() - startedMs > 900) {
			// Three lifetimes in, the alarm that reclaims expired leases finds it renewed: still held,
			// so a second request may not take the only slot.
			checkedMidStream = true;
			await runDurableObjectAlarm(env.POOL.getByName("renewing"));
			expect((await poolStatus("renewing")).inFlight).toBe(1);
			const second = await postToPool("renewing", { headers: { "x-max-wait-ms": "1" } });
			expect(second.status).toBe(429);
		}
	}
	expect(checkedMidStream).toBe(true);
	expect(text).toContain("[DONE]");
	expect(Date.now() - startedMs).toBeGreaterThan(1_200);
	expect((await settledPool("renewing")).sinceStart).toMatchObject({ shed: 0 });
	// Only the stream reached the provider: the slot was never handed to anyone else.
	expect(upstream.sent).toHaveLength(1);
});
