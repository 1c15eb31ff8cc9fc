import { useState, type FormEvent } from "react";
import { useLogin } from "../account/queries";
import { ErrorNote, useDocumentTitle } from "../components/ui";
import { useSession } from "../session";

export function LoginPage() {
  useDocumentTitle("Sign in");
  const { signIn } = useSession();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const login = useLogin();

  function submit(event: FormEvent) {
    event.preventDefault();
    login.mutate({ email, password }, { onSuccess: (data) => signIn(data.api_key) });
  }

  return (
    <main className="login">
      <h1>Content automation</h1>
      <form onSubmit={submit} className="card">
        <label>
          Email
          <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} required />
        </label>
        <label>
          Password
          <input
            type="password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </label>
        <button type="submit" disabled={login.isPending}>
          Sign in
        </button>
        <ErrorNote error={login.error} />
      </form>
    </main>
  );
}
