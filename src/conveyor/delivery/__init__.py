"""Model delivery (CI/CD): a commit of a model repository → train → gate → challenger → canary
→ promote or roll back, every step recorded with the commit id (docs/cicd.md)."""
