import { AlertDialog } from "radix-ui";
import type { ReactNode } from "react";

type Props = {
  /** The button that asks. */
  trigger: ReactNode;
  title: string;
  description: ReactNode;
  confirm: string;
  keep: string;
  onConfirm: () => void;
};

/** An action that asks first: the question in a modal, "keep" focused (the safe answer). */
export function Confirm({ trigger, title, description, confirm, keep, onConfirm }: Props) {
  return (
    <AlertDialog.Root>
      <AlertDialog.Trigger asChild>{trigger}</AlertDialog.Trigger>
      <AlertDialog.Portal>
        <AlertDialog.Overlay className="overlay" />
        <AlertDialog.Content className="dialog dialog-small">
          <AlertDialog.Title>{title}</AlertDialog.Title>
          <AlertDialog.Description>{description}</AlertDialog.Description>
          <div className="actions">
            <AlertDialog.Cancel asChild>
              <button type="button" className="secondary">
                {keep}
              </button>
            </AlertDialog.Cancel>
            <AlertDialog.Action asChild>
              <button type="button" className="danger" onClick={onConfirm}>
                {confirm}
              </button>
            </AlertDialog.Action>
          </div>
        </AlertDialog.Content>
      </AlertDialog.Portal>
    </AlertDialog.Root>
  );
}
