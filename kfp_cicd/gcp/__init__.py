"""Google Cloud calls over REST with google-auth: GKE clusters, Secret Manager, Vertex serving."""
