"""Generation: prompts → LLM → ledger → parsed pairs with located evidence."""
