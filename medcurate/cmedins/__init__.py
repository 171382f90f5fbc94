"""cmedins"""
