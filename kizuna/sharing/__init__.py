"""One-off sharing, made on the patient's side: the International Patient Summary
(:mod:`kizuna.sharing.ips`) and SMART Health Links (:mod:`kizuna.sharing.shl`: the link and its
encrypted content; :mod:`kizuna.sharing.links`: what the service keeps and serves)."""
