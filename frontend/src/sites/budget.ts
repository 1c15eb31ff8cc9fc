import type { Share } from "../lib/budget";

/** The AI functions of the allocation, as a person calls them, with their chart colours. */
export const FUNCTIONS: readonly { key: Share; label: string; color: string }[] = [
  { key: "clustering", label: "Clustering", color: "#2f5bd3" },
  { key: "idea_generation", label: "Ideas", color: "#0f8a6c" },
  { key: "content_generation", label: "Content", color: "#b3591e" },
  { key: "image_prompt_extraction", label: "Image prompts", color: "#7a3fb3" },
  { key: "image_generation", label: "Images", color: "#b3261e" },
];
