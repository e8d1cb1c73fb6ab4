// Production Worker entry: the gateway's fetch handler and the Pool Durable Object class. Local
// dev serves src/dev.ts instead, which adds the mock provider; nothing of it ships from here.
import { createApp } from "./gateway/app.ts";
import { createBatchConsumer, type LineMessage } from "./gateway/batch-consumer.ts";

export { Batch } from "./durable/batch.ts";
export { TenantBudget } from "./durable/budget.ts";
export { Pool } from "./durable/pool.ts";
export { TenantRegistry } from "./durable/registry.ts";

const gateway = createApp();
const consumeBatchLines = createBatchConsumer();

export default {
	fetch(request, env, ctx): Response | Promise<Response> {
		return gateway.fetch(request, env, ctx);
	},
	queue(batch, env): Promise<void> {
		return consumeBatchLines(batch, env);
	},
} satisfies ExportedHandler<Env, LineMessage>;
