"""Example host applications that show Parley inside a business app.

They are not part of the server: Parley reaches them only through a tool pack's import path or,
for a host app running on its own, through a tool source.
"""
