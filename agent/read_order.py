"""Who reads which file: for one user, each client's files in the order it reads them, per environment.

A read order is what one client, run by the user in one kind of session (user_env), reads for a
registry: its files in order, the first holding credentials for the registry answering (docker's
rules read one file; containers/image's read several, read_order's callers stop at the first). Orders
that are the same for several clients are one order naming them all. The families' rules are in
docker_client (the docker CLI), nerdctl_client and containers_client (podman, skopeo, buildah).
"""

from . import containers_client, docker_client, nerdctl_client

FAMILY_RULES = {"docker": docker_client, "nerdctl": nerdctl_client}


def client_rules(client):
    return FAMILY_RULES.get(client.name, containers_client)


def read_orders(clients, account, environments):
    """[ReadOrder] of every client for this user in every environment, the same order once."""
    orders = {}
    for environment in environments:
        for client in clients:
            if environment.kind == "su" and client.name not in containers_client.RUNTIME_FALLBACK:
                continue  # only podman and buildah read differently there (they pick a runtime dir)
            for order in client_rules(client).read_orders(client, account, environment):
                known = orders.setdefault(order.key(), order)
                if client.name not in known.clients:
                    known.clients.append(client.name)
                if environment.kind not in known.sessions:
                    known.sessions.append(environment.kind)
    return list(orders.values())
