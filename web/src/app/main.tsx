import { render } from "preact";
import "./styles.css";
import { App } from "./App.tsx";
import { AppStore } from "./store.ts";

const store = new AppStore(window);
store.start();
const root = document.getElementById("app");
if (root) render(<App store={store} />, root);
