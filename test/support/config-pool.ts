// The smallest valid pool of TOLLBOOTH_CONFIG, for the tests that parse configurations.
export const OPENAI_POOL = {
	name: "openai",
	provider: "openai",
	baseUrl: "https://api.openai.com/v1",
	apiKeySecret: "OPENAI_API_KEY",
	limits: { requestsPerMinute: 600, tokensPerMinute: 60_000, maxConcurrent: 10 },
};
