// How the mock counts tokens and what it answers: one documented rule on both sides, so the
// gateway's reconciliation with reported usage is exact.

const CHARS_PER_TOKEN = 4;

// Three letters each: "the fox ran" is 4n - 1 characters, so n tokens under the rule below.
const WORDS = ["the", "fox", "ran", "far", "and", "saw", "one", "red", "owl", "fly", "off", "now"];

/** Prompt tokens: ceil(characters / 4), at least 1. */
export function promptTokensOf(text: string): number {
	return Math.max(1, Math.ceil(text.length / CHARS_PER_TOKEN));
}

/**
 * The text of a prompt field in any provider's shape: a string, an array of strings or of
 * parts/messages, each read through its `text` or `content`. Other fields (images, tools) count
 * nothing.
 */
export function textOf(value: unknown): string {
	if (typeof value === "string") return value;
	if (Array.isArray(value)) return value.map(textOf).join("");
	if (typeof value === "object" && value !== null) {
		const part = value as { text?: unknown; content?: unknown };
		if (typeof part.text === "string") return part.text;
		return textOf(part.content);
	}
	return "";
}

/** The answer as stream pieces, one per token; joined they make the full text. */
export function answerPieces(tokenCount: number): string[] {
	return Array.from({ length: tokenCount }, (_, index) => {
		const word = WORDS[index % WORDS.length] ?? "";
		return index === 0 ? word : ` ${word}`;
	});
}
