// An acquire request for tests that call the Pool object over RPC, with defaults a test overrides.
import type { AcquireRequest } from "../../src/durable/pool.ts";

export function poolAsk(overrides: Partial<AcquireRequest> = {}): AcquireRequest {
	return {
		ticketId: crypto.randomUUID(),
		tenant: "team-a",
		model: "gpt-4o-mini",
		priority: "normal",
		tokens: 100,
		maxWaitMs: 5000,
		...overrides,
	};
}
