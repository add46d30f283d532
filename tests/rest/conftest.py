OPENAI_MODELS = "https://api.openai.com/v1/models"
