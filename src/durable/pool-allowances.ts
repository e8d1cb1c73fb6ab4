// The Pool's allowances as a Worker isolate holds them: the wallet it spends them from and the
// shapes of its batches, from core, so that the gateway depends on the Pool's surface only.
export { AllowanceWallet, type Spend } from "../core/allowance-wallet.ts";
export {
	type AllowanceScope,
	type EndedSpend,
	POOL_DIMENSIONS,
	type PoolDimension,
} from "../core/pool-allowances.ts";
