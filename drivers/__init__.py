"""Protocol drivers (Modbus, OPC UA) and the plant simulator."""
