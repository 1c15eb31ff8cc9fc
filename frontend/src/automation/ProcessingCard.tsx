import type { Schemas } from "../api/client";
import { stageItems } from "./format";

/** What the active run is working on right now. */
export function ProcessingCard({
  processing,
}: {
  processing: Schemas["ProcessingOut"] | undefined;
}) {
  return (
    <section className="card" aria-label="Currently processing" data-testid="processing">
      <h2>Currently processing</h2>
      {!processing ? (
        <p className="hint">Nothing: no run is active.</p>
      ) : (
        <>
          <p>
            Stage {processing.stage}: {processing.stage_name} ·{" "}
            {processing.batches > 0 && processing.batch > 0
              ? `batch ${processing.batch} of ${processing.batches}`
              : processing.status === "paused"
                ? "paused"
                : "between batches"}
          </p>
          <p className="hint">
            {processing.processed} of {stageItems(processing.stage, processing.total)} of this stage
            done
          </p>
          {processing.items.length > 0 && (
            <ul className="in-flight" aria-label="Items in flight">
              {processing.items.map((item) => (
                <li key={item.id}>{item.title}</li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}
