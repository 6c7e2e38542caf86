// Routing by the URL's hash (#/timeline): the API serves one page at "/", and a reload or a
// shared link lands on the same view.

import { useEffect, useState } from "preact/hooks";

export function currentRoute(win: Window = window): string {
  const hash = win.location.hash.replace(/^#\/?/, "");
  return hash.split("?")[0] ?? "";
}

export function useRoute(): string {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

export function go(route: string): void {
  window.location.hash = `#/${route}`;
}
