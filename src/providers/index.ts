// The provider layer's entry: the module that speaks a given upstream API's wire format.

import { anthropicProvider } from "./anthropic.ts";
import { openAiProvider } from "./openai.ts";
import type { Provider, ProviderKind } from "./types.ts";

const openAi = openAiProvider("openai");
const openAiCompatible = openAiProvider("openai-compatible");

/** An OpenAI-compatible upstream speaks OpenAI's wire format, so it behaves as openai. */
export function providerFor(kind: ProviderKind): Provider {
	switch (kind) {
		case "openai":
			return openAi;
		case "openai-compatible":
			return openAiCompatible;
		case "anthropic":
			return anthropicProvider;
	}
}
