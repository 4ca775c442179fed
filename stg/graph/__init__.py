"""The graph stage of STG-Net: motion model, spatial graph, mask selection and temporal graph (Eqs. 2-8)."""
