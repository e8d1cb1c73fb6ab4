// The TOLLBOOTH_CONFIG the Worker tests run with: pools pointed at the in-process mock provider
// (http://mock.test, routed by test/support/mock-upstream.ts) and two tenants.
export const TEST_KEYS = {
	teamA: "test-key-team-a",
	teamB: "test-key-team-b",
	admin: "test-admin",
} as const;
export const TEST_PROVIDER_KEY = "test-provider-key";
export const MOCK_ORIGIN = "http://mock.test";
/** The batch webhook receiver the tests answer for (a fetch spy), and the secret that signs. */
export const WEBHOOK_RECEIVER_HOST = "127.0.0.1:8789";
export const TEST_WEBHOOK_SECRET = "whsec-test-secret-value";

// sha256 of TEST_KEYS.teamA and TEST_KEYS.teamB
const TEAM_A_HASH = "88679f793f921fe3a5ebd6bdde335cba5521ae73ba2c3fbfc3515f0bde6642ce";
const TEAM_B_HASH = "aa4461453a1d4e000bc4f1bfef450adc5ceef656d57ddb056dc575c498bd8f23";
const ADMIN_HASH = "db09d473d4b6461b91bfa47e4fed3ef55e0234df4132ca7a827b0a69e8927cac";

const generous = { requestsPerMinute: 6000, tokensPerMinute: 6_000_000, maxConcurrent: 50 };

function tightPool(name: string) {
	return {
		name,
		provider: "openai",
		baseUrl: `${MOCK_ORIGIN}/openai/v1`,
		apiKeySecret: "TEST_PROVIDER_KEY",
		limits: {
			requestsPerMinute: 60,
			tokensPerMinute: 600_000,
			burstRequests: 2,
			burstTokens: 20_000,
			maxConcurrent: 2,
		},
		maxWaitMs: 5000,
		maxQueueLength: 3,
		leaseTtlMs: 30_000,
	};
}

/** Every test pool lets the mock's fault header through, so a test can ask for a fault. */
const MOCK_FAULT_HEADER = ["x-mock-fault"];

export const testConfig = {
	maxBodyBytes: 64 * 1024,
	// Batch webhooks may go to the tests' loopback receiver and to one https host.
	webhookHosts: [WEBHOOK_RECEIVER_HOST, "hooks.example.com"],
	// sha256 of TEST_KEYS.admin
	adminKeySha256: [ADMIN_HASH],
	pools: [
		{
			name: "openai",
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: generous,
		},
		{
			name: "anthropic",
			provider: "anthropic",
			baseUrl: `${MOCK_ORIGIN}/anthropic/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: generous,
		},
		// Small enough to make requests wait: 2 at once, 2 requests of burst, 1 per second after.
		// One per test that drains it, since a pool's object keeps its state within a test file.
		...[
			"tight",
			"tight-deadline",
			"tight-full",
			"tight-restart",
			"tight-priority",
			"tight-shed",
		].map(tightPool),
		{
			// Leases that expire quickly, for reclaiming a slot whose holder vanished.
			name: "shortlease",
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: { ...generous, maxConcurrent: 1 },
			leaseTtlMs: 100,
		},
		{
			// Leases that must be renewed often: streams outlive several lifetimes.
			name: "renewing",
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: { ...generous, maxConcurrent: 1 },
			leaseTtlMs: 300,
		},
		{
			// A provider that counts 5 requests a second in a sliding window.
			name: "window",
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: { ...generous, requestsPerMinute: 300, algorithm: "sliding-window", windowMs: 1000 },
			maxWaitMs: 30_000,
		},
		{
			// Gives up on a silent provider quickly.
			name: "impatient",
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: generous,
			firstByteTimeoutMs: 300,
			totalTimeoutMs: 1000,
			streamIdleTimeoutMs: 300,
		},
		// Allowances on (the default) and turned off.
		...["allowances", "allowances-429", "no-allowances"].map((name) => ({
			name,
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: generous,
			allowances: name !== "no-allowances",
		})),
		// Each gets its own object, so the breaker tripped in one test cannot leak into another.
		...["faults", "faults-4xx", "breaker"].map((name) => ({
			name,
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: generous,
		})),
		{
			name: "faults-anthropic",
			provider: "anthropic",
			baseUrl: `${MOCK_ORIGIN}/anthropic/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: generous,
		},
		// A small pool that overflows to "overflow" with a model mapped.
		{
			...tightPool("with-fallback"),
			fallback: { pool: "overflow", models: { "gpt-4o-mini": "gpt-4o-mini-2" } },
		},
		{
			name: "overflow",
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: generous,
		},
		// Configured far above what the mock will really allow, and one that learns its limits.
		{
			name: "learner",
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: generous,
		},
		{
			name: "auto",
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: { requestsPerMinute: "auto", tokensPerMinute: "auto", maxConcurrent: 10 },
		},
		{
			// The production wrangler.toml's Anthropic pool: 40,000 tokens a minute, default bursts.
			name: "anthropic-40k",
			provider: "anthropic",
			baseUrl: `${MOCK_ORIGIN}/anthropic/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: { requestsPerMinute: 50, tokensPerMinute: 40_000, maxConcurrent: 20 },
		},
		{
			name: "nokey",
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "UNSET_SECRET",
			limits: generous,
		},
		{
			// The operator's own organization and project, one permitted beta, no pass-through.
			name: "strict",
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: generous,
			organization: "org-operator",
			project: "proj-operator",
			allowedBetas: ["assistants=v2"],
			passThrough: "deny",
		},
		{
			name: "anthropic-betas",
			provider: "anthropic",
			baseUrl: `${MOCK_ORIGIN}/anthropic/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: generous,
			allowedBetas: ["prompt-caching-2024-07-31"],
		},
		{
			// Concurrency is what binds: 8 at once, a long queue, rates far above the load.
			name: "aborts",
			provider: "openai",
			baseUrl: `${MOCK_ORIGIN}/openai/v1`,
			apiKeySecret: "TEST_PROVIDER_KEY",
			limits: { ...generous, maxConcurrent: 8 },
			maxQueueLength: 5000,
			maxWaitMs: 60_000,
		},
	].map((pool) => ({ ...pool, forwardHeaders: MOCK_FAULT_HEADER })),
	// USD per million tokens, for the budget tests (not real prices).
	prices: {
		"gpt-4o": { input: 2.5, cachedInput: 1.25, output: 10 },
		"gpt-4o-mini": { input: 0.15, cachedInput: 0.075, output: 0.6 },
		"claude-sonnet-4-5": { input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15 },
		"claude-haiku-4-5": { input: 1, cachedInput: 0.1, cacheWrite: 1.25, output: 5 },
	},
	tenants: [
		{
			name: "team-a",
			keySha256: [TEAM_A_HASH],
			pools: ["*"],
			defaultPriority: "normal",
			maxPriority: "high",
		},
		{
			name: "team-b",
			keySha256: [TEAM_B_HASH],
			pools: ["openai"],
			defaultPriority: "low",
			maxPriority: "normal",
		},
	],
};
