// tollbooth's Worker as a bench Worker imports it: wrangler builds bench entries with the module
// "tollbooth-worker" aliased to src/index.ts, whose Workers-only types the Node tsconfig cannot
// load (bench/ is type-checked by tsconfig.node.json).
declare module "tollbooth-worker" {
	const worker: {
		fetch(request: Request, env: unknown, ctx: unknown): Response | Promise<Response>;
		queue(batch: unknown, env: unknown): Promise<void>;
	};
	export default worker;
	/** The Pool Durable Object class, re-exported so the bench Worker binds the very same class. */
	export const Pool: unknown;
	/** The tenant registry, budget and batch Durable Object classes, bound by wrangler.toml too. */
	export const TenantRegistry: unknown;
	export const TenantBudget: unknown;
	export const Batch: unknown;
}
