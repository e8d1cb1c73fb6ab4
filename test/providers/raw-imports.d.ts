// Types for Vite's `?raw` imports, which load the SSE fixtures as text.
declare module "*?raw" {
	const text: string;
	export default text;
}
