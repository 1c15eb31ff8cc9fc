import { Toast } from "radix-ui";
import { createContext, useCallback, useContext, useRef, useState, type ReactNode } from "react";

type Notify = (text: string) => void;
const ToastContext = createContext<Notify>(() => undefined);

/** How long an action's message stays before it fades. */
const SHOWN_MS = 6000;

/** Action messages ("Run started") as toasts that fade on their own, announced politely. */
export function Toasts({ children }: { children: ReactNode }) {
  const [items, setItems] = useState<{ id: number; text: string }[]>([]);
  const next = useRef(0);
  const notify = useCallback<Notify>((text) => {
    next.current += 1;
    const id = next.current;
    setItems((list) => [...list, { id, text }]);
  }, []);
  const forget = (id: number) =>
    // After the fade-out: Radix unmounts the toast's content once its animation ends.
    window.setTimeout(() => setItems((list) => list.filter((t) => t.id !== id)), 1000);

  return (
    <Toast.Provider duration={SHOWN_MS} swipeDirection="right" label="Messages">
      <ToastContext.Provider value={notify}>{children}</ToastContext.Provider>
      {items.map((t) => (
        <Toast.Root
          key={t.id}
          className="toast"
          type="background"
          onOpenChange={(open) => {
            if (!open) forget(t.id);
          }}
        >
          <Toast.Description data-testid="toast">{t.text}</Toast.Description>
          <Toast.Close className="toast-close" aria-label="Dismiss">
            ×
          </Toast.Close>
        </Toast.Root>
      ))}
      <Toast.Viewport className="toast-viewport" />
    </Toast.Provider>
  );
}

export function useNotify(): Notify {
  return useContext(ToastContext);
}
