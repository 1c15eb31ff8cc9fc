import { Cell, Pie, PieChart, ResponsiveContainer } from "recharts";
import type { Shares } from "../lib/budget";
import { FUNCTIONS } from "./budget";

/** The allocation as a ring, one slice per AI function (loaded apart: recharts is large). */
export default function BudgetChart({ shares }: { shares: Shares }) {
  const data = FUNCTIONS.map((f) => ({ name: f.label, value: shares[f.key], color: f.color }));
  const text = data.map((d) => `${d.name} ${d.value}%`).join(", ");
  return (
    <figure className="budget-chart" role="img" aria-label={`Allocation: ${text}`}>
      <ResponsiveContainer width="100%" height={200}>
        <PieChart accessibilityLayer={false}>
          <Pie
            data={data}
            dataKey="value"
            nameKey="name"
            innerRadius="55%"
            outerRadius="90%"
            isAnimationActive={false}
            stroke="#fff"
          >
            {data.map((d) => (
              <Cell key={d.name} fill={d.color} />
            ))}
          </Pie>
        </PieChart>
      </ResponsiveContainer>
    </figure>
  );
}
