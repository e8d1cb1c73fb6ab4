// Priority classes a caller may ask for (x-priority), from most to least important.
export type Priority = "critical" | "high" | "normal" | "low";

export const PRIORITIES: readonly Priority[] = ["critical", "high", "normal", "low"];
