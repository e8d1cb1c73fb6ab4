// The Pool's allowances as a Worker isolate holds them: its holder (the wallet it spends them from,
// when its batches go) and their shapes, from core, so that the gateway depends on the Pool's surface only.
export { ASK_DELAY_MS, PoolAllowanceHolder } from "../core/allowance-holder.ts";
export type { Spend } from "../core/allowance-wallet.ts";
export {
	type AllowanceScope,
	type EndedSpend,
	POOL_DIMENSIONS,
	type PoolDimension,
} from "../core/pool-allowances.ts";
