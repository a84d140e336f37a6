"""A local simulated deployment of ecr-fleet-auth: AWS's side simulated, the product's side real.

See localfleet/README.md for the layout and which way imports go.
"""
