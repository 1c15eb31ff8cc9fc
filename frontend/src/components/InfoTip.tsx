import { useState, type ReactNode } from "react";
import { Tooltip } from "radix-ui";

/**
 * An "i" button whose tooltip explains a metric: on hover and keyboard focus as Radix does, and
 * on a tap too (Radix opens no tooltip for touch, and phones have no hover).
 */
export function InfoTip({ about, children }: { about: string; children: ReactNode }) {
  const [open, setOpen] = useState(false);
  return (
    <Tooltip.Root open={open} onOpenChange={setOpen}>
      <Tooltip.Trigger asChild>
        <button
          type="button"
          className="info"
          aria-label={`About ${about}`}
          // Radix closes on pointer down and click; here a tap opens it.
          onPointerDown={(e) => e.preventDefault()}
          onClick={(e) => {
            e.preventDefault();
            setOpen(true);
          }}
        >
          i
        </button>
      </Tooltip.Trigger>
      <Tooltip.Portal>
        <Tooltip.Content className="tooltip" sideOffset={4} collisionPadding={8}>
          {children}
          <Tooltip.Arrow className="tooltip-arrow" />
        </Tooltip.Content>
      </Tooltip.Portal>
    </Tooltip.Root>
  );
}

/** A term and its explanation: the label, then its tooltip button. */
export function Term({ label, tip }: { label: string; tip: ReactNode }) {
  return (
    <>
      {label} <InfoTip about={label}>{tip}</InfoTip>
    </>
  );
}
